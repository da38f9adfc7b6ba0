from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from billing.views.balances import association_urlpatterns as association_balances_urls
from billing.views.batch import month_all_start

admin.site.site_header = "Séjour — administration"
admin.site.site_title = "Séjour"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("connexion/", auth_views.LoginView.as_view(), name="login"),
    path("deconnexion/", auth_views.LogoutView.as_view(), name="logout"),
    path("", include("structures.urls")),
    path("toutes-sections/facturation/", month_all_start, name="billing-month-all"),
    path("toutes-sections/restes-a-recouvrer/", include(association_balances_urls)),
    path("s/<str:alias>/residents/", include("residents.urls")),
    path("s/<str:alias>/payeurs/", include("payers.urls")),
    path("s/<str:alias>/facturation/", include("billing.urls")),
    path("s/<str:alias>/imports/", include("imports.urls")),
    path("s/<str:alias>/courriels/", include("mailing.urls")),
    path("s/<str:alias>/prelevements/", include("sepa.urls")),
    path("s/<str:alias>/relances/", include("reminders.urls")),
]
# No route serves MEDIA_ROOT, even with DEBUG on (./dev run): PDFs and uploaded files are only
# reached through views that check the login and the section grants.
