from django.urls import path

from . import views

app_name = "payers"
urlpatterns = [
    path("", views.PayerListView.as_view(), name="list"),
    path("nouveau/", views.PayerCreateView.as_view(), name="create"),
    path("<int:pk>/", views.PayerDetailView.as_view(), name="detail"),
    path("<int:pk>/definition/", views.PayerDefinitionView.as_view(), name="edit"),
    path("<int:pk>/parametrage/", views.PayerSettingsView.as_view(), name="settings"),
    path("<int:pk>/groupes/ajouter/", views.GroupCreateView.as_view(), name="group-add"),
    path("<int:pk>/groupes/<int:group_pk>/", views.GroupUpdateView.as_view(), name="group-edit"),
    path("<int:pk>/groupes/<int:group_pk>/supprimer/", views.GroupDeleteView.as_view(), name="group-delete"),
    path("<int:pk>/notes/ajouter/", views.NoteAddView.as_view(), name="note-add"),
]
