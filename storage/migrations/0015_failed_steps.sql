-- Steps of a request that ran out of attempts: the job to run again (its
-- kind and arguments), the status the request was in, and the error. Staff
-- resume a failed request from here (POST /api/v1/requests/{id}/resume);
-- nothing that gave up is dropped silently. job_id makes recording it
-- idempotent: the error handler and the failures sweep may both see it.
CREATE TABLE failed_steps (
    id           bigserial PRIMARY KEY,
    job_id       bigint NOT NULL UNIQUE,
    request_id   uuid NOT NULL REFERENCES requests (id),
    kind         text NOT NULL,
    args         jsonb NOT NULL,
    from_status  text NOT NULL,
    error_class  text NOT NULL,
    error        text NOT NULL,
    failed_at    timestamptz NOT NULL,
    retried_at   timestamptz,
    retried_by   text NOT NULL DEFAULT ''
);

CREATE INDEX failed_steps_open ON failed_steps (request_id) WHERE retried_at IS NULL;
