"""offers.area_municipalities and offers.area_postcodes: an offer's service area as columns
PostgreSQL computes from ``service_area`` (JSON) on every write, so that FindOffers filters
the menu card by the patient's area in SQL; offer_menu_versions: a counter per care group
that a trigger bumps at the commit of any change of its offers, so that a cached menu card
is checked with one read by key

Create Date: 2026-12-07 10:00:00
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"

MUNICIPALITIES = """
CREATE FUNCTION referral_area_municipalities(area json) RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT coalesce(array_agg(code), '{}')
  FROM json_array_elements_text(CASE WHEN json_typeof(area -> 'municipality_codes') = 'array'
                                     THEN area -> 'municipality_codes' ELSE '[]' END) AS code
$$
"""
POSTCODES = """
CREATE FUNCTION referral_area_postcodes(area json) RETURNS int4multirange
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT coalesce(range_agg(int4range((r ->> 'first')::int, (r ->> 'last')::int, '[]')), '{}')
  FROM json_array_elements(CASE WHEN json_typeof(area -> 'postcode_ranges') = 'array'
                                THEN area -> 'postcode_ranges' ELSE '[]' END) AS r
$$
"""

# Deferred to the commit, so that the counter's row lock is held only while committing (and,
# for a referral's change, after the outbox head's: every writer locks in that order).
BUMP = """
CREATE FUNCTION referral_bump_menu_version() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO offer_menu_versions AS v (care_group_id, version) VALUES (NEW.care_group_id, 1)
  ON CONFLICT (care_group_id) DO UPDATE SET version = v.version + 1;
  IF TG_OP = 'UPDATE' AND OLD.care_group_id IS DISTINCT FROM NEW.care_group_id THEN
    INSERT INTO offer_menu_versions AS v (care_group_id, version) VALUES (OLD.care_group_id, 1)
    ON CONFLICT (care_group_id) DO UPDATE SET version = v.version + 1;
  END IF;
  RETURN NULL;
END
$$
"""
TRIGGER = """
CREATE CONSTRAINT TRIGGER offers_bump_menu_version AFTER INSERT OR UPDATE ON offers
DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION referral_bump_menu_version()
"""


def upgrade() -> None:
    op.execute(MUNICIPALITIES)
    op.execute(POSTCODES)
    op.create_table(
        "offer_menu_versions",
        sa.Column("care_group_id", sa.String(length=63), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("care_group_id", name=op.f("pk_offer_menu_versions")),
    )
    op.execute(
        "INSERT INTO offer_menu_versions (care_group_id, version)"
        " SELECT care_group_id, 1 FROM offers GROUP BY care_group_id"
    )
    op.execute(BUMP)
    op.execute(TRIGGER)
    op.add_column(
        "offers",
        sa.Column(
            "area_municipalities",
            postgresql.ARRAY(sa.Text()),
            sa.Computed("referral_area_municipalities(service_area)", persisted=True),
            nullable=False,
        ),
    )
    op.add_column(
        "offers",
        sa.Column(
            "area_postcodes",
            postgresql.INT4MULTIRANGE(),
            sa.Computed("referral_area_postcodes(service_area)", persisted=True),
            nullable=False,
        ),
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER offers_bump_menu_version ON offers")
    op.execute("DROP FUNCTION referral_bump_menu_version()")
    op.drop_table("offer_menu_versions")
    op.drop_column("offers", "area_postcodes")
    op.drop_column("offers", "area_municipalities")
    op.execute("DROP FUNCTION referral_area_postcodes(json)")
    op.execute("DROP FUNCTION referral_area_municipalities(json)")
