from django.urls import path

from . import views

app_name = "residents"
urlpatterns = [
    path("", views.ResidentListView.as_view(), name="list"),
]
