from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    # Django's auth views but the password reset: the inbox sends no mail, and the reset
    # pages, unused, answered anyone (and failed when posted). An operator resets a
    # password in the admin.
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path(
        "accounts/password_change/",
        auth_views.PasswordChangeView.as_view(),
        name="password_change",
    ),
    path(
        "accounts/password_change/done/",
        auth_views.PasswordChangeDoneView.as_view(),
        name="password_change_done",
    ),
    # The language switcher posts to Django's set_language view.
    path("i18n/", include("django.conf.urls.i18n")),
    path("", include("inbox.urls")),
]
