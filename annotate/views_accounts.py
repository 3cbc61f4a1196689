"""The account menu's pages: change one's password, and set it the first time through a one-time link."""

from django.contrib import messages
from django.contrib.auth import update_session_auth_hash
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import PasswordChangeForm
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods
from django_htmx.http import HttpRequest as HtmxHttpRequest


@login_required
@never_cache
@require_http_methods(["GET", "POST"])
def password_change(request: HtmxHttpRequest) -> HttpResponse:
    form = PasswordChangeForm(request.user, request.POST or None, label_suffix="")
    if request.method == "POST" and form.is_valid():
        user = form.save()
        update_session_auth_hash(request, user)  # stay logged in here; other sessions of the account end
        messages.success(request, "Your password was changed.")
        return redirect("home")
    return render(request, "registration/password_change.html", {"form": form})


class SetPasswordView(auth_views.PasswordResetConfirmView):
    """Django's reset-confirm page (the token is swapped into the session at once, so it never lingers in the URL or a
    Referer), used for the first password of an invited member."""

    template_name = "registration/set_password.html"
    success_url = reverse_lazy("login")

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "label_suffix": ""}  # labels without a colon, as on every other form

    def form_valid(self, form):
        messages.success(self.request, f"Your password is set, {form.user.username}. Log in with it now.")
        return super().form_valid(form)


set_password = SetPasswordView.as_view()
