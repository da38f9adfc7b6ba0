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

# Aid plans (payers/views_aid_plans.py)
from . import views_aid_plans as aid_plans  # noqa: E402

urlpatterns += [
    path("<int:pk>/plans-aide/", aid_plans.AidPlanTabView.as_view(), name="aid-plans"),
    path("<int:pk>/plans-aide-defaut/ajouter/", aid_plans.AidPlanDefaultCreateView.as_view(),
         name="aid-plan-default-add"),
    path("<int:pk>/plans-aide-defaut/<int:default_pk>/", aid_plans.AidPlanDefaultUpdateView.as_view(),
         name="aid-plan-default-edit"),
    path("<int:pk>/plans-aide-defaut/<int:default_pk>/supprimer/", aid_plans.AidPlanDefaultDeleteView.as_view(),
         name="aid-plan-default-delete"),
    path("plans-aide/nouveau/", aid_plans.AidPlanCreateView.as_view(), name="aid-plan-create"),
    path("plans-aide/<int:plan_pk>/", aid_plans.AidPlanEditView.as_view(), name="aid-plan-edit"),
    path("plans-aide/<int:plan_pk>/valider/", aid_plans.AidPlanValidateView.as_view(), name="aid-plan-validate"),
]

# Social-aid applications, a tab of the resident's file (payers/views_social_aid.py)
from . import views_social_aid as social_aid  # noqa: E402

urlpatterns += [
    path("residents/<int:pk>/aide-sociale/", social_aid.ResidentSocialAidView.as_view(), name="resident-social-aid"),
    path("residents/<int:pk>/aide-sociale/ajouter/", social_aid.ApplicationCreateView.as_view(),
         name="resident-social-aid-add"),
    path("residents/<int:pk>/aide-sociale/<int:application_pk>/", social_aid.ApplicationUpdateView.as_view(),
         name="resident-social-aid-edit"),
]
