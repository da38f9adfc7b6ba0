from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext as _
from stdnum.fr import nir as stdnum_nir


def normalize_nir(value: str) -> str:
    return "".join((value or "").split()).upper()


def validate_nir(value: str) -> None:
    """French social-security number: 15 characters including the 2-digit key (Corsica 2A/2B)."""
    if not value:
        return
    compact = normalize_nir(value)
    if len(compact) != 15 or not stdnum_nir.is_valid(compact):
        raise ValidationError(
            _("NIR invalide : « %(value)s » (15 caractères avec la clé, clé vérifiée)."), params={"value": value}
        )


def validate_not_future(value) -> None:
    if value and value > timezone.localdate():
        raise ValidationError(_("La date %(value)s est dans le futur."), params={"value": value.strftime("%d/%m/%Y")})
