"""Realistic-looking CRM rows for benchmarks, generated set-based (INSERT ... SELECT generate_series).

Values are drawn with PostgreSQL's random() after setseed(), so a run builds the same data
every time. Needs Django set up (see _common.django_setup); writes through its connection.
"""

from collections.abc import Callable
from dataclasses import dataclass

from django.db import connection


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


FIRST_NAMES = _words(
    "James Mary Robert Patricia John Jennifer Michael Linda David Elizabeth William Barbara Richard Susan "
    "Joseph Jessica Thomas Sarah Charles Karen Christopher Lisa Daniel Nancy Matthew Betty Anthony Sandra "
    "Mark Margaret Donald Ashley Steven Kimberly Andrew Emily Paul Donna Joshua Michelle Kenneth Carol "
    "Kevin Amanda Brian Melissa George Deborah Timothy Stephanie Jose Maria Luis Carmen Wei Mei Raj Priya"
)
LAST_NAMES = _words(
    "Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez Gonzalez "
    "Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson White Harris Sanchez Clark "
    "Ramirez Lewis Robinson Walker Young Allen King Wright Scott Torres Nguyen Hill Flores Green Adams "
    "Nelson Baker Hall Rivera Campbell Mitchell Carter Roberts Gomez Phillips Evans Turner Diaz Parker "
    "Cruz Edwards Collins Reyes Stewart Morris Morales Murphy Cook Rogers Gutierrez Ortiz Morgan Cooper "
    "Peterson Bailey Reed Kelly Howard Ramos Kim Cox Ward Richardson Watson Brooks Chavez Wood James "
    "Bennett Gray Mendoza Ruiz Hughes Price Alvarez Castillo Sanders Patel Myers Long Ross Foster Smithson"
)
# (city, state, zip prefix, area code, latitude, longitude): hail-belt and storm-coast markets.
CITIES = (
    ("Dallas", "TX", "752", "214", 32.7767, -96.7970),
    ("Fort Worth", "TX", "761", "817", 32.7555, -97.3308),
    ("Plano", "TX", "750", "972", 33.0198, -96.6989),
    ("Houston", "TX", "770", "713", 29.7604, -95.3698),
    ("San Antonio", "TX", "782", "210", 29.4241, -98.4936),
    ("Austin", "TX", "787", "512", 30.2672, -97.7431),
    ("Denver", "CO", "802", "303", 39.7392, -104.9903),
    ("Aurora", "CO", "800", "720", 39.7294, -104.8319),
    ("Colorado Springs", "CO", "809", "719", 38.8339, -104.8214),
    ("Oklahoma City", "OK", "731", "405", 35.4676, -97.5164),
    ("Tulsa", "OK", "741", "918", 36.1540, -95.9928),
    ("Wichita", "KS", "672", "316", 37.6872, -97.3301),
    ("Omaha", "NE", "681", "402", 41.2565, -95.9345),
    ("Kansas City", "MO", "641", "816", 39.0997, -94.5786),
    ("Minneapolis", "MN", "554", "612", 44.9778, -93.2650),
    ("Atlanta", "GA", "303", "404", 33.7490, -84.3880),
    ("Charlotte", "NC", "282", "704", 35.2271, -80.8431),
    ("Tampa", "FL", "336", "813", 27.9506, -82.4572),
    ("Orlando", "FL", "328", "407", 28.5383, -81.3792),
    ("Nashville", "TN", "372", "615", 36.1627, -86.7816),
)
STREETS = _words(
    "Oak Maple Cedar Pine Elm Willow Birch Hickory Walnut Magnolia Pecan Sycamore Lakeview Hillcrest "
    "Meadow Ridge Park Sunset Highland Valley Spring Forest Brookside Prairie Mesa Aspen Juniper"
)
STREET_SUFFIXES = _words("St Ave Dr Ln Ct Blvd Way Pl Rd Cir Trl")
EMAIL_DOMAINS = _words("gmail.com yahoo.com outlook.com hotmail.com icloud.com aol.com comcast.net att.net")
SOURCES = _words("door_knock referral website google_ads storm_canvass facebook yard_sign home_show angi")
CAMPAIGNS = ("Spring hail 2024", "May storm canvass", "Fall gutter promo", "Insurance claim assist", "Referral bonus")
PROPERTY_TYPES = _words("single_family single_family single_family townhouse multi_family commercial")
ROOF_TYPES = _words("asphalt_shingle asphalt_shingle asphalt_shingle architectural_shingle metal tile slate tpo shake")
CARRIERS = (
    "State Farm",
    "Allstate",
    "USAA",
    "Farmers",
    "Liberty Mutual",
    "Travelers",
    "Nationwide",
    "Progressive",
    "American Family",
)
CARRIER_CODES = ("SF", "AL", "US", "FA", "LM", "TR", "NW", "PG", "AF")
DEDUCTIBLES = (500, 1000, 1000, 1500, 2500, 2500, 5000)
TAGS = _words("hail wind insurance retail gutters solar referral vip follow-up storm-2024 hoa financing")
ROLES = ("owner", "admin", "admin", "manager", "manager", "manager")


def _array(values: tuple | list) -> str:
    """A SQL array literal of text values (constants of this module only)."""
    quoted = ", ".join("'" + str(value).replace("'", "''") + "'" for value in values)
    return f"ARRAY[{quoted}]"


def _numeric_array(values: tuple | list) -> str:
    return "ARRAY[" + ", ".join(str(value) for value in values) + "]::numeric[]"


def _pick(array: str, index: str) -> str:
    """The `index`-th (0-based) element of a SQL array expression."""
    return f"({array})[1 + {index}]"


def _random_index(count: int) -> str:
    return f"floor(random() * {count})::int"


def seed(value: float) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT setseed(%s)", [value])


@dataclass(frozen=True)
class SeededTenant:
    id: int
    subdomain: str
    contacts: int


def tenants_create(sizes: list[int], *, members_per_10k: int = 8, min_members: int = 12) -> list[SeededTenant]:
    """One tenant per entry of `sizes` (its contact count, used to size its staff), with members.

    Each tenant gets an owner, two admins, three managers, members and a few viewers (every
    tenth); about one member per 1,250 contacts (at least `min_members`).
    """
    tenants = []
    with connection.cursor() as cursor:
        for index, size in enumerate(sizes, start=1):
            subdomain = f"roofing-{index:02d}"
            cursor.execute(
                """
                INSERT INTO tenants (name, subdomain, settings, features, subscription_status,
                                     subscription_expires_at, logo_url, primary_color, secondary_color, timezone)
                VALUES (%s, %s, '{"week_starts_on": "monday"}', '{"campaigns": true, "ai_chat": false}', 'active',
                        now() + interval '300 days', %s, '#1f6feb', '#f0883e', 'America/Chicago')
                RETURNING id
                """,
                [
                    f"{CITIES[index % len(CITIES)][0]} Roofing & Exteriors {index}",
                    subdomain,
                    f"https://cdn.example/{subdomain}.png",
                ],
            )
            (tenant_id,) = cursor.fetchone()
            members = max(min_members, size * members_per_10k // 10_000)
            cursor.execute(
                f"""
                WITH staff AS (
                    INSERT INTO users (password, is_superuser, username, first_name, last_name, email,
                                       is_staff, is_active, date_joined)
                    SELECT '!', false, %(subdomain)s || '-user-' || g,
                           {_pick(_array(FIRST_NAMES), f"mod(g * 7, {len(FIRST_NAMES)})")},
                           {_pick(_array(LAST_NAMES), f"mod(g * 13, {len(LAST_NAMES)})")},
                           %(subdomain)s || '-user-' || g || '@example.com',
                           false, true, now() - g * interval '3 days'
                    FROM generate_series(1, %(members)s) g
                    RETURNING id, username
                )
                INSERT INTO tenant_users (tenant_id, user_id, role, status, joined_at)
                SELECT %(tenant)s, id,
                       CASE WHEN n <= {len(ROLES)} THEN {_pick(_array(ROLES), "n - 1")}
                            WHEN mod(n, 10) = 0 THEN 'viewer' ELSE 'member' END,
                       CASE WHEN mod(n, 25) = 0 THEN 'deactivated' ELSE 'active' END,
                       now() - n * interval '3 days'
                FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM staff) numbered
                """,
                {"subdomain": subdomain, "members": members, "tenant": tenant_id},
            )
            tenants.append(SeededTenant(id=tenant_id, subdomain=subdomain, contacts=size))
    return tenants


def contacts_create(
    tenant: SeededTenant, *, chunk: int = 25_000, on_progress: Callable[[int], None] | None = None
) -> None:
    """`tenant.contacts` contacts spread over three years (unique `created_at`), about 4% deleted.

    Every column holds a plausible value (or NULL where real data has gaps), ~85% are assigned
    to one of the tenant's members, and about 1% have the last name Smith (1% Smithson).
    """
    city_count = len(CITIES)
    cities = [_array([city[field] for city in CITIES]) for field in range(4)]
    second_tag = f"mod(tag_i + 1 + mod(g, {len(TAGS) - 1}), {len(TAGS)})"  # never the first one again
    latitudes = _numeric_array([city[4] for city in CITIES])
    longitudes = _numeric_array([city[5] for city in CITIES])
    sql = f"""
        WITH staff AS (
            SELECT array_agg(user_id ORDER BY user_id) AS ids FROM tenant_users WHERE tenant_id = %(tenant)s
        ), draw AS MATERIALIZED (
            SELECT g,
                   {_random_index(len(FIRST_NAMES))} AS first_i,
                   {_random_index(len(LAST_NAMES))} AS last_i,
                   {_random_index(city_count)} AS city_i,
                   {_random_index(len(TAGS))} AS tag_i,
                   {_random_index(len(CARRIERS))} AS carrier_i,
                   {_random_index(len(SOURCES))} AS source_i,
                   random() AS r_email, random() AS r_mobile, random() AS r_tags, random() AS r_type,
                   random() AS r_stage, random() AS r_priority, random() AS r_assigned, random() AS r_insured,
                   random() AS r_claim, random() AS r_inspected, random() AS r_custom, random() AS r_details,
                   random() AS r_deleted, random() AS r_updated
            FROM generate_series(%(start)s::bigint, %(stop)s::bigint) g
        )
        INSERT INTO contacts (
            tenant_id, first_name, last_name, email, phone, mobile_phone,
            address_street, address_city, address_state, address_zip, latitude, longitude,
            type, stage, source, source_details, assigned_to_id, property_type, roof_type, roof_age,
            last_inspection_date, property_value, square_footage, stories, insurance_carrier,
            policy_number, claim_number, deductible, lead_score, priority, custom_fields, tags,
            is_deleted, created_by_id, updated_by_id, created_at, updated_at
        )
        SELECT %(tenant)s,
               {_pick(_array(FIRST_NAMES), "first_i")},
               {_pick(_array(LAST_NAMES), "last_i")},
               CASE WHEN r_email < 0.92 THEN lower({_pick(_array(FIRST_NAMES), "first_i")} || '.'
                    || {_pick(_array(LAST_NAMES), "last_i")} || g || '@'
                    || {_pick(_array(EMAIL_DOMAINS), _random_index(len(EMAIL_DOMAINS)))}) END,
               '(' || {_pick(cities[3], "city_i")} || ') ' || (200 + mod(g, 800)) || '-'
                    || lpad(mod(g * 7919, 10000)::text, 4, '0'),
               CASE WHEN r_mobile < 0.6 THEN '(' || {_pick(cities[3], "city_i")} || ') '
                    || (200 + mod(g * 31, 800)) || '-' || lpad(mod(g * 104729, 10000)::text, 4, '0') END,
               (100 + floor(random() * 9800)::int) || ' ' || {_pick(_array(STREETS), _random_index(len(STREETS)))}
                    || ' ' || {_pick(_array(STREET_SUFFIXES), _random_index(len(STREET_SUFFIXES)))},
               {_pick(cities[0], "city_i")},
               {_pick(cities[1], "city_i")},
               {_pick(cities[2], "city_i")} || lpad(floor(random() * 100)::int::text, 2, '0'),
               round({_pick(latitudes, "city_i")} + (random() - 0.5)::numeric * 0.3, 6),
               round({_pick(longitudes, "city_i")} + (random() - 0.5)::numeric * 0.3, 6),
               CASE WHEN r_type < 0.55 THEN 'lead' WHEN r_type < 0.75 THEN 'prospect' ELSE 'customer' END,
               CASE WHEN r_stage < 0.25 THEN 'new' WHEN r_stage < 0.45 THEN 'contacted'
                    WHEN r_stage < 0.60 THEN 'qualified' WHEN r_stage < 0.72 THEN 'proposal'
                    WHEN r_stage < 0.80 THEN 'negotiation' WHEN r_stage < 0.92 THEN 'won' ELSE 'lost' END,
               {_pick(_array(SOURCES), "source_i")},
               CASE WHEN r_details < 0.6 THEN jsonb_build_object(
                        'campaign', {_pick(_array(CAMPAIGNS), _random_index(len(CAMPAIGNS)))},
                        'landing_page', '/free-roof-inspection',
                        'utm_source', {_pick(_array(SOURCES), "source_i")})
                    ELSE '{{}}'::jsonb END,
               CASE WHEN r_assigned < 0.85 THEN
                    (SELECT ids[1 + floor(r_assigned / 0.85 * cardinality(ids))::int] FROM staff) END,
               {_pick(_array(PROPERTY_TYPES), _random_index(len(PROPERTY_TYPES)))},
               {_pick(_array(ROOF_TYPES), _random_index(len(ROOF_TYPES)))},
               floor(random() * 36)::int,
               CASE WHEN r_inspected < 0.6 THEN date '2023-06-01' + floor(random() * 1200)::int END,
               round((120000 + random() * 830000)::numeric, -2),
               900 + floor(random() * 4300)::int,
               CASE WHEN random() < 0.7 THEN 1 WHEN random() < 0.85 THEN 2 ELSE 3 END,
               CASE WHEN r_insured < 0.8 THEN {_pick(_array(CARRIERS), "carrier_i")} END,
               CASE WHEN r_insured < 0.8 THEN {_pick(_array(CARRIER_CODES), "carrier_i")} || '-'
                    || lpad(mod(g * 48271, 100000000)::text, 8, '0') END,
               CASE WHEN r_insured < 0.8 AND r_claim < 0.4 THEN 'CLM-' || (2023 + mod(g, 3)) || '-'
                    || lpad(mod(g * 16807, 1000000)::text, 6, '0') END,
               CASE WHEN r_insured < 0.8 THEN
                    {_pick(_numeric_array(DEDUCTIBLES), _random_index(len(DEDUCTIBLES)))} END,
               floor(random() * 101)::int,
               CASE WHEN r_priority < 0.12 THEN 'low' WHEN r_priority < 0.72 THEN 'normal'
                    WHEN r_priority < 0.92 THEN 'high' ELSE 'urgent' END,
               CASE WHEN r_custom < 0.5 THEN jsonb_build_object(
                        'gate_code', lpad(floor(random() * 10000)::int::text, 4, '0'),
                        'hoa', random() < 0.3, 'dog_on_property', random() < 0.2)
                    ELSE '{{}}'::jsonb END,
               CASE WHEN r_tags < 0.3 THEN '{{}}'::varchar[]
                    WHEN r_tags < 0.75 THEN ARRAY[{_pick(_array(TAGS), "tag_i")}]::varchar[]
                    ELSE ARRAY[{_pick(_array(TAGS), "tag_i")}, {_pick(_array(TAGS), second_tag)}]::varchar[]
               END,
               r_deleted < 0.04,
               (SELECT ids[1 + floor(r_updated * cardinality(ids))::int] FROM staff),
               (SELECT ids[1 + floor(r_details * cardinality(ids))::int] FROM staff),
               timestamptz '2023-11-01 00:00+00' + (g + random() * 0.9) * %(step)s * interval '1 second',
               timestamptz '2023-11-01 00:00+00' + (g + 0.95) * %(step)s * interval '1 second'
                    + r_updated * interval '20 days'
        FROM draw
    """
    step_seconds = 3 * 365 * 86400 / tenant.contacts
    for start in range(1, tenant.contacts + 1, chunk):
        stop = min(start + chunk - 1, tenant.contacts)
        with connection.cursor() as cursor:
            cursor.execute(sql, {"tenant": tenant.id, "start": start, "stop": stop, "step": step_seconds})
        if on_progress is not None:
            on_progress(stop)


def vacuum_analyze(*tables: str) -> None:
    """VACUUM ANALYZE, as autovacuum would have after the load: fresh statistics, visibility map set."""
    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(f"VACUUM ANALYZE {table}")
