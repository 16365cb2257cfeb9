-- Issue 12: complaints, explanations, transfers and requests made for
-- someone else. What these carry beyond the six rights (a complaint's text
-- and the request it concerns, a transfer's receiver, staff's answer, a
-- minor's age band, a next-of-kin approver's evidence) is one jsonb value:
-- rights.Details. It holds personal data (texts): purged with the rest of
-- an unverified request (storage.PurgeUnverified).
ALTER TABLE requests ADD COLUMN details jsonb;

-- A complaint names the request it concerns; staff find the complaints
-- about a request.
CREATE INDEX requests_concerns ON requests ((details->>'concerns')) WHERE details ? 'concerns';
