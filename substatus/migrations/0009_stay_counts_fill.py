"""Fill the counts of 0008 from the stays already rolled up (set-based)."""

from django.db import migrations

# Each finished stay in its UTC day and its UTC month, as substatus.services counts them.
PERIODS = """
CROSS JOIN LATERAL (
    VALUES (false, (stay.entered_at AT TIME ZONE 'UTC')::date),
           (true, date_trunc('month', stay.entered_at AT TIME ZONE 'UTC')::date)
) AS period (monthly, period)
"""

FILL = f"""
SELECT 1 FROM substatus_stays_watermark FOR UPDATE;
UPDATE substatus_stays SET bucket = substatus_stay_bucket(seconds) WHERE left_at IS NOT NULL;
INSERT INTO substatus_stay_counts (tenant_id, entity, monthly, period, whole_status, status, substatus_id,
                                   next_status, entries, micros)
SELECT stay.tenant_id, stay.entity, period.monthly, period.period, stay.whole_status, stay.status,
       stay.substatus_id, stay.next_status, count(*), sum((stay.seconds * 1000000)::bigint)
FROM substatus_stays AS stay
{PERIODS}
WHERE stay.left_at IS NOT NULL
GROUP BY 1, 2, 3, 4, 5, 6, 7, 8;
INSERT INTO substatus_stay_buckets (tenant_id, entity, monthly, period, whole_status, status, substatus_id,
                                    bucket, entries)
SELECT stay.tenant_id, stay.entity, period.monthly, period.period, stay.whole_status, stay.status,
       stay.substatus_id, stay.bucket, count(*)
FROM substatus_stays AS stay
{PERIODS}
WHERE stay.left_at IS NOT NULL
GROUP BY 1, 2, 3, 4, 5, 6, 7, 8;
INSERT INTO substatus_open_stay_counts (tenant_id, entity, hour, whole_status, status, substatus_id, entries, micros)
SELECT stay.tenant_id, stay.entity, date_trunc('hour', stay.entered_at, 'UTC'), stay.whole_status, stay.status,
       stay.substatus_id, count(*), sum((extract(epoch FROM stay.entered_at) * 1000000)::bigint)
FROM substatus_stays AS stay
WHERE stay.left_at IS NULL
GROUP BY 1, 2, 3, 4, 5, 6
"""

EMPTY = """
DELETE FROM substatus_stay_counts;
DELETE FROM substatus_stay_buckets;
DELETE FROM substatus_open_stay_counts;
UPDATE substatus_stays SET bucket = NULL WHERE bucket IS NOT NULL
"""


class Migration(migrations.Migration):
    dependencies = [("substatus", "0008_stay_counts")]

    operations = [migrations.RunSQL(FILL, reverse_sql=EMPTY)]
