from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from apps.accounts.roles import VIEWER
from apps.actions.selectors import action_page
from apps.core.views import role_required


@role_required(VIEWER)
def action_list(request: HttpRequest) -> HttpResponse:
    return render(
        request, "actions/action_list.html", action_page(params=request.GET, user=request.user)
    )
