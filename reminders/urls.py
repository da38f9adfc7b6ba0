from django.urls import path

from . import views

app_name = "reminders"

urlpatterns = [
    path("", views.RunListView.as_view(), name="runs"),
    path("campagne/<int:pk>/", views.RunDetailView.as_view(), name="run"),
    path("campagne/<int:pk>/apercu/<int:line_pk>/", views.PreviewView.as_view(), name="preview"),
    path("campagne/<int:pk>/lettres.pdf", views.MergedPdfView.as_view(), name="merged-pdf"),
    path("lettre/<int:pk>/", views.LetterPdfView.as_view(), name="letter-pdf"),
    path("lettre/<int:pk>/recommande/", views.RegisteredNumberView.as_view(), name="registered-number"),
    path("facture/<int:pk>/", views.InvoiceRemindersView.as_view(), name="invoice"),
    path("resident/<int:pk>/", views.ResidentRemindersView.as_view(), name="resident"),
]
