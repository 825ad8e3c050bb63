from typing import TYPE_CHECKING, cast

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from apps.accounts.models import PersonalToken
from apps.accounts.services import personal_token_mint, personal_token_revoke
from apps.core.forms import TtlField

if TYPE_CHECKING:
    from django.contrib.auth.models import User


class PersonalTokenForm(forms.Form):
    name = forms.CharField(
        max_length=100, help_text="What the token is for, e.g. 'budgets in git'."
    )
    ttl = TtlField(initial="90d")


@login_required
def tokens(request: HttpRequest) -> HttpResponse:
    new_token = None
    if request.method == "POST":
        form = PersonalTokenForm(request.POST)
        if form.is_valid():
            _, new_token = personal_token_mint(
                user=cast("User", request.user),
                name=form.cleaned_data["name"],
                ttl=form.cleaned_data["ttl"],
            )
            form = PersonalTokenForm()
    else:
        form = PersonalTokenForm()
    return render(
        request,
        "accounts/tokens.html",
        {
            "form": form,
            "new_token": new_token,
            "tokens": PersonalToken.objects.filter(user=cast("User", request.user)),
        },
    )


@require_POST
@login_required
def token_revoke(request: HttpRequest, token_id: int) -> HttpResponse:
    token = get_object_or_404(PersonalToken, pk=token_id, user=request.user)
    personal_token_revoke(token=token)
    messages.success(request, f"Token {token.prefix}… revoked.")
    return redirect("accounts:tokens")
