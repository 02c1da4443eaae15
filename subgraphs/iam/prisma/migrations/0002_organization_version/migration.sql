-- iam: an organization's aggregate version, the `aggregateVersion` of its events
-- (packages/contracts iam events): 1 when created, +1 with every change it announces.
ALTER TABLE "organizations"
    ADD COLUMN "version" INTEGER NOT NULL DEFAULT 1,
    ADD CONSTRAINT "organizations_version_check" CHECK ("version" >= 1);
