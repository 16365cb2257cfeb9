package blobs

// Buffered is how many bytes an S3 writer holds in memory (its buffer's
// capacity).
func Buffered(w Writer) int { return cap(w.(*s3Writer).buf) }
