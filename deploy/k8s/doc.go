// Package k8s holds no code: its test builds the Kubernetes manifests in
// this directory (a kustomize base and the example overlay), decodes every
// object into its API type with unknown fields refused, and checks them
// against the binary they run: its subcommands and flags, the environment
// variables and configuration it reads, the routes it serves and the
// addresses it listens on. See deploy/README.md, "Kubernetes".
package k8s
