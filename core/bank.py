"""The one place where SEPA bank identifiers are checked (IBAN, BIC, ICS): the establishment form
(structures), the residents import, the mandate services (sepa) all call these. It lives in ``core``
because structures, below sepa, uses it too. Each returns the compact form or raises
``ValidationError`` in French. (The RUM rule stays with the mandate: ``sepa.models.RUM_VALIDATOR``.)"""
from __future__ import annotations

import re

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _



def iban_check(text: str) -> tuple[str, str | None]:
    """Compact IBAN and the BIC the bank registry proposes (a hint, never imposed).

    Country, length, IBAN key and the national key (RIB key for France, ``validate_bban``) are
    checked; an IBAN outside the SEPA zone is refused."""
    from schwifty import IBAN
    from schwifty import exceptions as ex

    compact = re.sub(r"[\s\-.]", "", text or "").upper()
    try:
        iban = IBAN(compact, validate_bban=True)
    except ex.InvalidCountryCode:
        message = _("IBAN invalide : code pays inconnu.")
    except ex.InvalidLength:
        message = _("IBAN invalide : longueur incorrecte pour ce pays.")
    except ex.InvalidChecksumDigits:
        message = _("IBAN invalide : clé de contrôle de l'IBAN incorrecte (faute de frappe ?).")
    except ex.InvalidBBANChecksum:
        message = _("IBAN invalide : clé RIB incorrecte.")
    except (ex.InvalidStructure, ex.InvalidBankCode, ex.InvalidBranchCode, ex.InvalidAccountCode):
        message = _("IBAN invalide : structure incorrecte pour ce pays.")
    except ValueError:
        message = _("IBAN invalide.")
    else:
        if not iban.in_sepa_zone:
            raise ValidationError(_("IBAN hors de la zone SEPA : prélèvement impossible."), code="iban")
        try:
            bic = iban.bic
        except Exception:  # noqa: BLE001 - the bank registry is only a hint
            bic = None
        return iban.compact, (str(bic) if bic else None)
    raise ValidationError(message, code="iban")


def validate_iban(text: str) -> str:
    return iban_check(text)[0]


def validate_bic(text: str) -> str:
    """Compact BIC (8 or 11 characters); empty stays empty."""
    from schwifty import BIC

    compact = re.sub(r"\s", "", text or "").upper()
    if not compact:
        return ""
    try:
        return BIC(compact).compact
    except ValueError:
        raise ValidationError(_("BIC invalide : 8 ou 11 caractères (banque, pays, localité, agence)."),
                              code="bic") from None


def validate_ics(text: str) -> str:
    """Creditor identifier (ICS), e.g. FR72ZZZ123456, checked with its key (stdnum.eu.at_02)."""
    from stdnum.eu import at_02
    from stdnum.exceptions import ValidationError as StdnumError

    try:
        return at_02.validate(text or "")
    except StdnumError:
        raise ValidationError(_("ICS invalide : %(value)s (format FRkkZZZnnnnnn, clé contrôlée).")
                              % {"value": text}, code="ics") from None
