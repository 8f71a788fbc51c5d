"""`manage.py substatus_stays_refresh`: roll the substatus history up for the analytics now.

Beat does it every minute; run it after loading history in bulk, or to fill the rollup of a
large existing history at once (the analytics read the rest from the history meanwhile).
"""

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from substatus.models import SubstatusStaysWatermark
from substatus.services import substatus_stays_refresh


class Command(BaseCommand):
    help = "Roll the substatus history up into the stays the analytics read, from the watermark on."

    def handle(self, *args: Any, **options: Any) -> None:
        began = time.monotonic()
        touched = substatus_stays_refresh()
        if touched is None:
            raise CommandError("The substatus history was being written throughout: try again.")
        watermark = SubstatusStaysWatermark.objects.get(pk=1).history_id
        self.stdout.write(
            f"{touched:,} record(s) rolled up, up to history row {watermark:,}, in {time.monotonic() - began:.1f} s."
        )
