"""The old system's six campaign templates: the defaults every tenant has (rows without a tenant).

Migration 0003 writes them from a frozen copy of this list (migrations never import app code;
a test keeps the two equal). `default_templates_ensure` puts back any that are missing, e.g.
after `manage.py flush`, which empties data-migration rows along with the rest.
"""

from typing import Any

from campaigns.models import CampaignTemplate

SIGN_OFF = "\n\n{{ user.first_name }}\n{{ tenant.name }}\n\nUnsubscribe: {{ unsubscribe_url }}"


def _email(subject: str, body: str, delay: int = 0, unit: str = "hours") -> dict[str, Any]:
    return {
        "step_type": "send_email",
        "delay_value": delay,
        "delay_unit": unit,
        "step_config": {"subject": subject, "body": body + SIGN_OFF},
    }


def _sms(body: str, delay: int = 0, unit: str = "hours") -> dict[str, Any]:
    return {
        "step_type": "send_sms",
        "delay_value": delay,
        "delay_unit": unit,
        "step_config": {"body": body + " Reply STOP to opt out."},
    }


def _task(title: str, delay: int, unit: str) -> dict[str, Any]:
    return {
        "step_type": "create_task",
        "delay_value": delay,
        "delay_unit": unit,
        "step_config": {"title": title, "assign_to": "owner", "due_in_days": 1},
    }


def _wait(days: int) -> dict[str, Any]:
    return {"step_type": "wait", "delay_value": days, "delay_unit": "days", "step_config": {}}


TEMPLATES: list[dict[str, Any]] = [
    {
        "key": "new-lead-welcome",
        "name": "New Lead Welcome Series",
        "description": "Welcome a new lead, get a call on the calendar, and follow up twice.",
        "campaign_type": "drip",
        "goal_type": "appointments",
        "goal_target": 50,
        "triggers": [{"trigger_type": "stage_change", "trigger_config": {"entity": "contact", "to": "new"}}],
        "steps": [
            _email(
                "Thanks for reaching out to {{ tenant.name }}",
                "Hi {{ contact.first_name }},\n\nThanks for contacting us about your roof. We will call you "
                "shortly to set up a free inspection at a time that suits you.",
            ),
            _task("Call new lead {{ contact.first_name }} {{ contact.last_name }}", 2, "hours"),
            _wait(3),
            _email(
                "What to expect from a roof inspection",
                "Hi {{ contact.first_name }},\n\nAn inspection takes about an hour. We check the shingles, "
                "flashing, vents and gutters, take photos, and leave you a written report.",
            ),
            _wait(3),
            _email(
                "Still thinking about your roof?",
                "Hi {{ contact.first_name }},\n\nIf you would like a free inspection, reply to this email or "
                "call us and we will find a time this week.",
            ),
        ],
    },
    {
        "key": "estimate-follow-up",
        "name": "Estimate Follow-up Sequence",
        "description": "After an estimate is sent: answer questions, remind, and hand over to sales.",
        "campaign_type": "event",
        "goal_type": "deals",
        "goal_target": 25,
        "triggers": [
            {"trigger_type": "event", "trigger_config": {"activity_type": "email", "subtype": "estimate_sent"}}
        ],
        "steps": [
            _email(
                "Your roofing estimate",
                "Hi {{ contact.first_name }},\n\nYour estimate is on its way. If anything in it is unclear, "
                "reply here and we will walk you through it.",
            ),
            _wait(3),
            _sms("Hi {{ contact.first_name }}, any questions about your estimate from {{ tenant.name }}?"),
            _wait(4),
            _email(
                "Ready to schedule your roof?",
                "Hi {{ contact.first_name }},\n\nOur crews book up a few weeks out. Approve your estimate "
                "and we will hold a start date for you.",
            ),
            _task("Call {{ contact.first_name }} about the estimate", 3, "days"),
        ],
    },
    {
        "key": "post-inspection-follow-up",
        "name": "Post-Inspection Follow-up",
        "description": "Thank the homeowner after the inspection and check in by text.",
        "campaign_type": "event",
        "goal_type": "appointments",
        "goal_target": None,
        "triggers": [
            {"trigger_type": "event", "trigger_config": {"activity_type": "meeting", "subtype": "roof_inspection"}}
        ],
        "steps": [
            _email(
                "Thanks for having us out",
                "Hi {{ contact.first_name }},\n\nThanks for letting us inspect your roof today. Your report "
                "and photos follow shortly.",
                2,
                "hours",
            ),
            _wait(1),
            _sms("Hi {{ contact.first_name }}, it's {{ tenant.name }}. Any questions about your inspection?"),
        ],
    },
    {
        "key": "win-back-inactive",
        "name": "Win-back Inactive Leads",
        "description": "Reach leads who went quiet, twice, a week apart.",
        "campaign_type": "reengagement",
        "goal_type": "appointments",
        "goal_target": None,
        "triggers": [],
        "steps": [
            _email(
                "Is your roof still on your list?",
                "Hi {{ contact.first_name }},\n\nWe spoke a while ago about your roof. If it is still on your "
                "list, we would be glad to take a fresh look, free of charge.",
            ),
            _wait(7),
            _email(
                "A free roof check before the season turns",
                "Hi {{ contact.first_name }},\n\nWeather is hardest on a roof that already has small problems. "
                "Book a free check and we will tell you honestly what it needs.",
            ),
        ],
    },
    {
        "key": "customer-review-request",
        "name": "Customer Review Request",
        "description": "Ask for a review once the job is done, then remind gently.",
        "campaign_type": "event",
        "goal_type": "reviews",
        "goal_target": 100,
        "triggers": [{"trigger_type": "stage_change", "trigger_config": {"entity": "project", "to": "completed"}}],
        "steps": [
            _email(
                "How did we do on {{ project.name }}?",
                "Hi {{ contact.first_name }},\n\nThanks for choosing {{ tenant.name }}. A short review helps "
                "neighbours find a roofer they can trust.",
                2,
                "days",
            ),
            _wait(5),
            _sms("Hi {{ contact.first_name }}, would you leave {{ tenant.name }} a quick review? It means a lot."),
            _wait(3),
            _email(
                "One last thing about your new roof",
                "Hi {{ contact.first_name }},\n\nIf you have a minute, a review of your experience with "
                "{{ tenant.name }} would help us a great deal.",
            ),
        ],
    },
    {
        "key": "storm-damage-outreach",
        "name": "Storm Damage Outreach",
        "description": "After a storm: offer inspections to the area, follow up by text and email, then call.",
        "campaign_type": "event",
        "goal_type": "appointments",
        "goal_target": None,
        "triggers": [],
        "steps": [
            _email(
                "Storm damage? Free roof inspection",
                "Hi {{ contact.first_name }},\n\nThe recent storm damaged many roofs around "
                "{{ contact.address_city }}. Hail damage is easy to miss from the ground; we will inspect yours "
                "for free and help with the insurance claim.",
            ),
            _wait(2),
            _sms("{{ tenant.name }}: free storm-damage roof inspections this week. Reply YES to book."),
            _wait(3),
            _email(
                "Insurance deadlines after a storm",
                "Hi {{ contact.first_name }},\n\nMost policies limit how long after a storm you can file a "
                "claim. An inspection now keeps your options open.",
            ),
            _task("Call {{ contact.first_name }} about storm damage", 2, "days"),
        ],
    },
]


def default_templates_ensure() -> int:
    """Create the defaults that are missing (by key); returns how many were created."""
    present = set(CampaignTemplate.objects.filter(tenant__isnull=True).values_list("key", flat=True))
    missing = [CampaignTemplate(tenant=None, **fields) for fields in TEMPLATES if fields["key"] not in present]
    CampaignTemplate.objects.bulk_create(missing, ignore_conflicts=True)  # a concurrent run made them: fine
    return len(missing)
