from django.urls import path

from . import views

app_name = "residents"
urlpatterns = [
    path("", views.ResidentListView.as_view(), name="list"),
    path("nouveau/", views.ResidentCreateView.as_view(), name="create"),
    path("<int:pk>/", views.ResidentDetailView.as_view(), name="detail"),
    path("<int:pk>/modifier/", views.ResidentUpdateView.as_view(), name="edit"),
    path("<int:pk>/notes/ajouter/", views.NoteAddView.as_view(), name="note-add"),
    path("<int:pk>/facturation/", views.BillingUpdateView.as_view(), name="billing-edit"),
    path("<int:pk>/proches/ajouter/", views.RelativeCreateView.as_view(), name="relative-add"),
    path("<int:pk>/proches/<int:relative_pk>/", views.RelativeUpdateView.as_view(), name="relative-edit"),
    path("<int:pk>/proches/<int:relative_pk>/supprimer/", views.RelativeDeleteView.as_view(),
         name="relative-delete"),
    path("<int:pk>/sejours/ajouter/", views.StayCreateView.as_view(), name="stay-add"),
    path("<int:pk>/sejours/<int:stay_pk>/", views.StayUpdateView.as_view(), name="stay-edit"),
    path("<int:pk>/sejours/<int:stay_pk>/transfert/", views.TransferView.as_view(), name="transfer"),
    path("<int:pk>/gir/ajouter/", views.GirCreateView.as_view(), name="gir-add"),
    path("<int:pk>/absences/ajouter/", views.AbsenceCreateView.as_view(), name="absence-add"),
    path("<int:pk>/absences/<int:absence_pk>/", views.AbsenceUpdateView.as_view(), name="absence-edit"),
    path("<int:pk>/absences/<int:absence_pk>/supprimer/", views.AbsenceDeleteView.as_view(),
         name="absence-delete"),
]
