-- Run once by the postgres image on an empty data directory
-- (mounted into /docker-entrypoint-initdb.d/ by docker-compose.yml).
--
-- One role for the services, the migrations and the outbox relay, and one database per
-- service, owned by that role. The role needs REPLICATION: the relay streams each
-- database's outbox with logical replication. In production give each service its own
-- role (and the relay its own REPLICATION role); one role keeps a laptop setup short.
--
-- The password comes from the container's MARQUEE_DB_PASSWORD (psql's \getenv).

\set ON_ERROR_STOP on
\getenv marquee_password MARQUEE_DB_PASSWORD

CREATE ROLE marquee LOGIN REPLICATION PASSWORD :'marquee_password';

CREATE DATABASE marquee_auth OWNER marquee;
CREATE DATABASE marquee_events OWNER marquee;
CREATE DATABASE marquee_search OWNER marquee;
CREATE DATABASE marquee_inventory OWNER marquee;
CREATE DATABASE marquee_booking OWNER marquee;
CREATE DATABASE marquee_payments OWNER marquee;
CREATE DATABASE marquee_notifications OWNER marquee;
CREATE DATABASE marquee_waitroom OWNER marquee;
CREATE DATABASE marquee_analytics OWNER marquee;
-- The gateway owns nothing durable and has no database (docs/decisions/0007).
