package config

import "github.com/datarights/datarights/rights"

// Redacted is the configuration as an admin may see it: what shapes the
// service's behaviour, without anything that opens a door. Connection
// strings, SMTP URLs (which carry credentials), webhook secrets, S3
// credentials and secret keys are left out; stores and recipients are
// named with their kind, and keys by id.
func (c *Config) Redacted() map[string]any {
	stores := make([]map[string]any, 0, len(c.Stores))
	for _, s := range c.Stores {
		stores = append(stores, map[string]any{"name": s.Name, "kind": s.Kind, "products": orEmpty(s.Products), "key": s.Key})
	}
	recipients := make([]map[string]any, 0, len(c.Recipients))
	for _, r := range c.Recipients {
		channel := "email"
		if r.Email == "" {
			channel = "webhook"
		}
		recipients = append(recipients, map[string]any{"name": r.Name, "channel": channel, "products": orEmpty(r.Products), "rights": r.Rights,
			"stop_sharing": r.StopSharing, "purposes": orEmpty(r.Purposes), "conditional": r.When != nil})
	}
	// Each right's rules: verification methods and pre-check names (a
	// webhook pre-check's secret stays out).
	rules := map[string]any{}
	for _, t := range rightsTypes() {
		rr := c.Rules(t)
		if len(rr.VerificationMethods) == 0 && len(rr.Prechecks) == 0 {
			continue
		}
		var checks []string
		for _, pc := range rr.Prechecks {
			checks = append(checks, pc.Name)
		}
		rules[string(t)] = map[string]any{"verification_methods": orEmpty(rr.VerificationMethods), "prechecks": orEmpty(checks)}
	}
	receivers := make([]map[string]any, 0, len(c.TransferReceivers))
	for _, r := range c.TransferReceivers {
		receivers = append(receivers, map[string]any{"name": r.Name, "channel": r.Channel(), "products": orEmpty(r.Products),
			"purpose": r.Purpose, "legal_basis": r.LegalBasis})
	}
	tokens := make([]map[string]any, 0, len(c.StaffTokens))
	for _, t := range c.StaffTokens {
		tokens = append(tokens, map[string]any{"name": t.Name, "role": t.Role, "products": orEmpty(t.Products)})
	}
	partners := make([]map[string]any, 0, len(c.OpenDSR.Partners))
	for _, pt := range c.OpenDSR.Partners {
		partners = append(partners, map[string]any{"name": pt.Name, "products": orEmpty(pt.Products),
			"callback_urls": orEmpty(pt.CallbackURLs), "requests_per_minute": pt.RequestsPerMinute, "requests_per_day": pt.RequestsPerDay})
	}
	var keyIDs []string
	if c.Keys != nil {
		keyIDs = c.Keys.IDs()
	}
	smtp := "file outbox"
	if c.SMTP.URL != "" {
		smtp = "smtp"
	}
	// The bucket and where it is, never the keys.
	objects := map[string]any{"backend": c.Objects.Backend}
	if s := c.Objects.S3; s != nil {
		objects["s3"] = map[string]any{"bucket": s.Bucket, "prefix": s.Prefix, "endpoint": s.Endpoint, "sse": s.SSE}
	}
	return map[string]any{
		"http": map[string]any{"addr": c.HTTP.Addr, "public_url": c.HTTP.PublicURL, "max_body_bytes": c.HTTP.MaxBodyBytes,
			"trusted_proxies": orEmpty(c.HTTP.TrustedProxies)},
		"smtp":               map[string]any{"transport": smtp, "from": c.SMTP.From, "attachment_limit_bytes": c.SMTP.AttachmentLimitBytes},
		"self_service":       c.SelfService,
		"intake":             c.Intake,
		"worker":             c.Worker,
		"sla":                c.SLA,
		"products":           c.Products,
		"stores":             stores,
		"recipients":         recipients,
		"rights":             rules,
		"transfer_receivers": receivers,
		"minors": map[string]any{"age_lookup": c.Minors.AgeLookup != nil, "bands": c.Minors.Bands, "rules": c.Minors.Rules,
			"guardian_rights": c.Minors.GuardianRights},
		"next_of_kin": map[string]any{"arrangement": c.NextOfKin.Arrangement != nil},
		"retention":   c.Retention,
		"exports": map[string]any{"formats": c.Exports.Formats, "destination": c.Exports.Destination, "links": c.Exports.Links,
			"link_ttl": c.Exports.LinkTTL.String()},
		"opendsr": map[string]any{"processor_domain": c.OpenDSR.ProcessorDomain, "identities": c.OpenDSR.Identities,
			"partners": partners},
		"objects":         objects,
		"staff_tokens":    tokens,
		"secret_key_ids":  orEmpty(keyIDs),
		"staff_env_token": c.EnvStaffToken != "",
	}
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func rightsTypes() []rights.Type { return rights.Types }
