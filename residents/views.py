from django.views.generic import ListView

from structures.views_mixins import SectionMixin

from . import selectors


class ResidentListView(SectionMixin, ListView):
    template_name = "residents/resident_list.html"
    paginate_by = 25

    def get_queryset(self):
        return selectors.resident_list(self.request.user, section=self.section,
                                       query=self.request.GET.get("q", "").strip(),
                                       presence=self.request.GET.get("presence", "present"))
