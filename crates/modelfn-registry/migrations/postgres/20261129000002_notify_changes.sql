-- Every change wakes every node: NOTIFY is delivered when the writing transaction
-- commits (never for one rolled back), to each connection LISTENing on the channel.
-- The payload is the generation; nodes re-read the log from their own, so a lost or
-- coalesced notification costs one poll's delay, nothing more.
CREATE FUNCTION modelfn_notify_change() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('modelfn_changes', NEW.generation::text);
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER changes_notify AFTER INSERT ON changes
    FOR EACH ROW EXECUTE FUNCTION modelfn_notify_change();
