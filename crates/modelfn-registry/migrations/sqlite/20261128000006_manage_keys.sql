-- Access keys that may also change what serves through the AWS management calls
-- (provisioned concurrency, SageMaker endpoint weights): off unless asked for.
ALTER TABLE access_keys ADD COLUMN manage INTEGER NOT NULL DEFAULT 0;
