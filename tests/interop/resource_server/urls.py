from django.urls import path

from .views import WhoAmI

urlpatterns = [path("api/whoami/", WhoAmI.as_view())]
