"""The wiring: every app's API routes, the admin, the schema and the health check."""

from django.conf import settings
from django.contrib import admin
from django.urls import URLPattern, URLResolver, include, path
from drf_spectacular.views import SpectacularAPIView
from rest_framework.routers import DefaultRouter

from ai_chat.views import AuditConversationViewSet, ConversationViewSet, UsageView
from campaigns.public import EmailEventView, TwilioInboundSmsView, TwilioStatusCallbackView
from campaigns.views import (
    CampaignEnrollmentViewSet,
    CampaignStepExecutionViewSet,
    CampaignStepViewSet,
    CampaignTemplateViewSet,
    CampaignTriggerViewSet,
    CampaignVersionViewSet,
    CampaignViewSet,
)
from contacts.views import ContactViewSet
from crm.health import healthz
from crm.views import (
    ActivityViewSet,
    ApiDocsView,
    AuthTokenViewSet,
    InvitationAcceptView,
    LogoutAllView,
    LogoutView,
    MembershipViewSet,
    MeView,
    ProjectContactViewSet,
    ProjectViewSet,
    TenantView,
    TokenView,
)
from filters.views import FilterConfigViewSet, FilterCountView, FilterUsageView, FilterValidateView, SavedFilterViewSet
from impersonation.views import (
    ImpersonationLogViewSet,
    ImpersonationStartView,
    ImpersonationStatusView,
    ImpersonationStopView,
)
from substatus.views import (
    ContactSubstatusHistoryViewSet,
    ProjectSubstatusHistoryViewSet,
    SubstatusAnalyticsView,
    SubstatusViewSet,
)

router = DefaultRouter()
# `/contacts` and `/contacts/` both answer: a redirect to add the slash would turn a POST into a GET.
router.trailing_slash = "/?"
router.include_root_view = False
router.register("contacts", ContactViewSet, basename="contact")
router.register("projects", ProjectViewSet, basename="project")
router.register(r"projects/(?P<project_pk>[0-9]{1,18})/contacts", ProjectContactViewSet, basename="project-contact")
router.register("activities", ActivityViewSet, basename="activity")
router.register("memberships", MembershipViewSet, basename="membership")
router.register("substatuses", SubstatusViewSet, basename="substatus")
router.register("campaigns", CampaignViewSet, basename="campaign")
router.register(r"campaigns/(?P<campaign_pk>[0-9]{1,18})/steps", CampaignStepViewSet, basename="campaign-step")
router.register(r"campaigns/(?P<campaign_pk>[0-9]{1,18})/triggers", CampaignTriggerViewSet, basename="campaign-trigger")
router.register(r"campaigns/(?P<campaign_pk>[0-9]{1,18})/versions", CampaignVersionViewSet, basename="campaign-version")
router.register("campaign-enrollments", CampaignEnrollmentViewSet, basename="campaign-enrollment")
router.register("campaign-executions", CampaignStepExecutionViewSet, basename="campaign-execution")
router.register("campaign-templates", CampaignTemplateViewSet, basename="campaign-template")
router.register("filter-configs", FilterConfigViewSet, basename="filter-config")
router.register("saved-filters", SavedFilterViewSet, basename="saved-filter")
router.register("auth/tokens", AuthTokenViewSet, basename="auth-tokens")
router.register("impersonation/logs", ImpersonationLogViewSet, basename="impersonation-log")
router.register("ai/conversations", ConversationViewSet, basename="ai-conversation")
router.register("ai/audit/conversations", AuditConversationViewSet, basename="ai-audit-conversation")

api_v1: list[URLPattern | URLResolver] = [
    path("auth/token/", TokenView.as_view(), name="auth-token"),
    path("auth/logout/", LogoutView.as_view(), name="auth-logout"),
    path("auth/logout-all/", LogoutAllView.as_view(), name="auth-logout-all"),
    path("me/", MeView.as_view(), name="me"),
    path("invitations/accept/", InvitationAcceptView.as_view(), name="invitation-accept"),
    path("tenant/", TenantView.as_view(), name="tenant"),
    path("impersonation/start/", ImpersonationStartView.as_view(), name="impersonation-start"),
    path("impersonation/stop/", ImpersonationStopView.as_view(), name="impersonation-stop"),
    path("impersonation/status/", ImpersonationStatusView.as_view(), name="impersonation-status"),
    path(
        "contacts/<int:record_pk>/substatus-history/",
        ContactSubstatusHistoryViewSet.as_view({"get": "list"}),
        name="contact-substatus-history",
    ),
    path(
        "projects/<int:record_pk>/substatus-history/",
        ProjectSubstatusHistoryViewSet.as_view({"get": "list"}),
        name="project-substatus-history",
    ),
    path("substatus/analytics/", SubstatusAnalyticsView.as_view(), name="substatus-analytics"),
    path("ai/usage/", UsageView.as_view(), name="ai-usage"),
    path("filters/validate/", FilterValidateView.as_view(), name="filters-validate"),
    path("filters/count/", FilterCountView.as_view(), name="filters-count"),
    path("filters/usage/", FilterUsageView.as_view(), name="filters-usage"),
    path("webhooks/twilio/<tenant_id:tenant_id>/sms/", TwilioInboundSmsView.as_view(), name="twilio-inbound-sms"),
    path(
        "webhooks/twilio/<tenant_id:tenant_id>/status/<tenant_id:execution_id>/",
        TwilioStatusCallbackView.as_view(),
        name="twilio-status-callback",
    ),
    path("webhooks/email/<tenant_id:tenant_id>/events/", EmailEventView.as_view(), name="email-events"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", ApiDocsView.as_view(url_name="schema"), name="docs"),
    path("", include(router.urls)),
]

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_v1)),
    # Campaign email's signed links (unsubscribe, open pixel, clicks): public, not API endpoints.
    path("mail/", include("campaigns.public")),
    path("healthz", healthz, name="healthz"),
]
if settings.ANYMAIL_WEBHOOK_SECRETS:
    # django-anymail's ESP webhooks (/webhooks/anymail/<esp>/tracking/), behind their basic auth:
    # campaigns.public.anymail_tracking_received records what they report.
    urlpatterns.append(path("webhooks/anymail/", include("anymail.urls")))

handler404 = "crm.api.errors.not_found"
handler500 = "crm.api.errors.server_error"
