"""« Générer tout » / « Émettre tout » from the tableau de bord: one job per section the user manages,
run in parallel by the workers and followed on one group job page."""
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import redirect
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from structures import access

from ..services import batch, periods


@login_required
@require_POST
def month_all_start(request):
    sections = list(access.sections_for(request.user, access.Role.MANAGER).filter(is_active=True)
                    .order_by("alias"))
    if not sections:
        raise PermissionDenied(_("Réservé aux responsables."))
    try:
        year, month = periods.parse_month(request.POST.get("mois", ""))
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("home")
    action = request.POST.get("action")
    if action == batch.ISSUE:
        sections = batch.sections_with_drafts(sections=sections, year=year, month=month)
        if not sections:
            messages.info(request, _("Aucun brouillon à émettre pour ce mois."))
            return redirect(f"{redirect('home').url}?mois={year:04d}-{month:02d}")
        job = batch.sections_month_start(sections=sections, year=year, month=month, action=batch.ISSUE,
                                         user=request.user, issue_date=timezone.localdate())
    elif action == batch.GENERATE:
        job = batch.sections_month_start(sections=sections, year=year, month=month, action=batch.GENERATE,
                                         user=request.user)
    else:
        messages.error(request, _("Action inconnue."))
        return redirect("home")
    return redirect("job-detail", pk=job.pk)
