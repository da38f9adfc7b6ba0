from django.urls import path

from . import views

urlpatterns = [
    path("", views.home, name="home"),
    path("s/<str:alias>/", views.section_home, name="section-home"),
    path("s/<str:alias>/parametres/section/", views.SectionSettingsView.as_view(), name="section-settings"),
    path("s/<str:alias>/parametres/etablissement/", views.EstablishmentSettingsView.as_view(),
         name="establishment-settings"),
    path("s/<str:alias>/parametres/association/", views.OrganisationSettingsView.as_view(),
         name="organisation-settings"),
]

from . import job_views  # noqa: E402

urlpatterns += [
    path("taches/<int:pk>/", job_views.job_detail, name="job-detail"),
    path("taches/<int:pk>/avancement/", job_views.job_progress, name="job-progress"),
    path("taches/<int:pk>/relancer/", job_views.job_rerun, name="job-rerun"),
    path("taches/<int:pk>/fichier/", job_views.job_download, name="job-download"),
    path("taches/diagnostic/", job_views.selftest_start, name="job-selftest"),
]
