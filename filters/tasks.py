from celery import shared_task

from filters.usage import usage_flush, usage_prune


@shared_task
def filter_usage_flush_task() -> int:
    """Beat, every 10 seconds: write the queued filter usage."""
    return usage_flush()


@shared_task
def filter_usage_prune_task() -> int:
    """Beat, daily: delete usage past the retention window."""
    return usage_prune()
