"""*Relevé de compte* from the *Compte* tab: PDF or XLSX of one debtor's account over a date range
(readers), sent by e-mail through the outbox (*facturation* role). The resident comes through the
section of the URL (another section's: 404); a relative must be one of that resident's (404)."""
from __future__ import annotations

from datetime import date

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views import View

from residents import selectors as resident_selectors
from structures.access import Role
from structures.views_mixins import SectionMixin

from ..services import account_statements as services

CONTENT_TYPES = {"pdf": "application/pdf",
                 "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


def _dates(data) -> tuple[date, date]:
    today = timezone.localdate()
    try:
        start = date.fromisoformat(data.get("du")) if data.get("du") else date(today.year, 1, 1)
        end = date.fromisoformat(data.get("au")) if data.get("au") else today
    except ValueError as exc:
        raise ValidationError(_("Date invalide : « %(du)s » / « %(au)s » (attendu AAAA-MM-JJ).") % {
            "du": data.get("du", ""), "au": data.get("au", "")}) from exc
    return start, end


class StatementMixin(SectionMixin):
    def statement(self, data):
        resident = resident_selectors.resident_get(self.request.user, section=self.section, pk=self.kwargs["pk"])
        relative = data.get("proche") or ""
        if relative and not relative.isdigit():
            raise Http404("Proche introuvable.")
        start, end = _dates(data)
        try:
            return services.statement_build(section=self.section, resident=resident, start=start, end=end,
                                            relative_id=int(relative) if relative else None)
        except ValidationError as exc:
            if relative and "proche" in " ".join(exc.messages):
                raise Http404("Proche introuvable.") from exc
            raise


class StatementFileView(StatementMixin, View):
    required_role = Role.READER

    def get(self, request, alias, pk, fmt):
        if fmt not in CONTENT_TYPES:
            raise Http404(_("Format inconnu : %(fmt)s") % {"fmt": fmt})
        try:
            statement = self.statement(request.GET)
        except ValidationError as exc:
            return HttpResponseBadRequest(" ".join(exc.messages), content_type="text/plain; charset=utf-8")
        content = services.statement_pdf(statement) if fmt == "pdf" else services.statement_xlsx(statement)
        response = HttpResponse(content, content_type=CONTENT_TYPES[fmt])
        disposition = "inline" if fmt == "pdf" else "attachment"
        response["Content-Disposition"] = f'{disposition}; filename="{services.statement_filename(statement, fmt)}"'
        response["Cache-Control"] = "private, no-store"
        return response


class StatementSendView(StatementMixin, View):
    required_role = Role.CLERK
    http_method_names = ["post"]

    def post(self, request, alias, pk):
        back = reverse("billing:resident-account", kwargs={"alias": alias, "pk": pk})
        try:
            statement = self.statement(request.POST)
            typed = (request.POST.get("email") or "").strip()
            services.statement_send(statement=statement, recipients=[typed] if typed else None, user=request.user)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(request, _("Relevé de compte de %(name)s mis en file d'envoi.") % {"name": statement.name})
        return redirect(back)


urlpatterns = [
    path("residents/<int:pk>/compte/releve.<str:fmt>", StatementFileView.as_view(), name="account-statement"),
    path("residents/<int:pk>/compte/releve/envoyer/", StatementSendView.as_view(), name="account-statement-send"),
]
