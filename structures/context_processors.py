from .access import sections_for


def sections(request):
    """Sections the user may open, for the section picker in the header."""
    user = getattr(request, "user", None)
    if not user or not user.is_authenticated:
        return {}
    return {
        "user_sections": list(sections_for(user)),
        "current_section_alias": request.session.get("section_alias", ""),
    }
