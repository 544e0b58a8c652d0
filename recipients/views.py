"""Directory views: quick search and detailed search (HTML fragments for the
share wizard, htmx), and the sender's favorites page."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from . import selectors, services
from .forms import DetailedSearchForm
from .rendering import pick_entries_html

# How a result is offered: "pick" (a button for the wizard's script), "favorite"
# (added in place on the favorites page), "select" (a plain form that adds it to
# the favorites, on the standalone detailed search).
MODES = ("pick", "favorite", "select")


def _is_htmx(request):
    return request.headers.get("HX-Request") == "true"


def _mode(request, default):
    mode = request.GET.get("mode", default)
    return mode if mode in MODES else default


@login_required
@require_GET
def quick_search(request):
    """Return the quick-search results for ?q= as an HTML fragment."""
    query = request.GET.get("q", "")[:100]
    # No result, no favorites to mark: the lookup is skipped.
    entries, favorite_keys = selectors.directory_quick_search_with_favorites(
        query=query, user=request.user
    )
    mode = _mode(request, "pick")
    return render(
        request,
        "recipients/_results.html",
        {
            "entries": entries,
            # The wizard's pick buttons are built without an include per entry.
            "entries_html": pick_entries_html(entries, favorite_keys)
            if mode == "pick"
            else None,
            "query": query,
            "too_short": len(query.strip()) < selectors.MIN_QUERY_LENGTH,
            "mode": mode,
            "favorite_keys": favorite_keys,
        },
    )


@login_required
@require_GET
def detailed_search(request):
    """Detailed search: the full page, or only its results for an htmx request."""
    form = DetailedSearchForm(request.GET or None)
    result = None
    if form.is_valid():
        result = selectors.directory_detailed_search(
            **form.criteria(), page=request.GET.get("page", 1)
        )
    htmx = _is_htmx(request)
    context = {
        "form": form,
        "result": result,
        "mode": _mode(request, "pick" if htmx else "select"),
        "favorite_keys": selectors.favorite_keys_of(user=request.user),
    }
    template = (
        "recipients/_detailed_results.html"
        if htmx
        else "recipients/detailed_search.html"
    )
    return render(request, template, context)


@login_required
@require_GET
def favorites(request):
    """The sender's favorites: list, add through a search, remove."""
    return render(request, "recipients/favorites.html", _favorites_context(request))


@login_required
@require_GET
def favorites_fragment(request):
    """The sender's favorites as an HTML fragment (for the wizard)."""
    return _favorites_fragment(request, mode=_mode(request, "pick"))


def _favorites_context(request, **extra):
    favorites = selectors.favorites_of(user=request.user)
    return {
        "favorites": favorites,
        "favorite_keys": {entry.key for entry in favorites},
        **extra,
    }


def _favorites_fragment(request, *, mode):
    return render(
        request, "recipients/_favorites.html", _favorites_context(request, mode=mode)
    )


@login_required
@require_POST
def favorite_add(request):
    """Add the posted key to the sender's favorites."""
    try:
        added = services.favorite_add(
            owner=request.user, key=request.POST.get("key", "")
        )
    except ValidationError:
        if _is_htmx(request):
            return HttpResponseBadRequest(_("This recipient cannot be found."))
        messages.error(request, _("This recipient cannot be found."))
        return redirect("recipients:favorites")
    if _is_htmx(request):
        # The favorites page swaps its list for this one.
        return _favorites_fragment(request, mode="manage")
    if added:
        messages.success(request, _("Added to your favorites."))
    else:
        messages.info(request, _("Already one of your favorites."))
    return redirect("recipients:favorites")


@login_required
@require_POST
def favorite_remove(request):
    """Remove the posted key from the sender's favorites."""
    services.favorite_remove(owner=request.user, key=request.POST.get("key", ""))
    if _is_htmx(request):
        # The favorites page swaps its list for this one.
        return _favorites_fragment(request, mode="manage")
    messages.success(request, _("Removed from your favorites."))
    return redirect("recipients:favorites")
