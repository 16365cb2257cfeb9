-- The SLA dashboard and the request register read windows of time by when
-- requests completed and when their deadline passed (storage/dashboard.go,
-- storage/register.go). received_at has its index already (0001).
CREATE INDEX requests_completed ON requests (completed_at, id) WHERE completed_at IS NOT NULL;
CREATE INDEX requests_breached ON requests (breached_at) WHERE breached_at IS NOT NULL;
