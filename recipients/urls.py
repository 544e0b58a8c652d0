from django.urls import path

from . import views

app_name = "recipients"
urlpatterns = [
    path("directory/search/", views.quick_search, name="quick_search"),
    path("directory/detailed/", views.detailed_search, name="detailed_search"),
    path("directory/favorites/", views.favorites, name="favorites"),
    path(
        "directory/favorites/fragment/",
        views.favorites_fragment,
        name="favorites_fragment",
    ),
    path("directory/favorites/add/", views.favorite_add, name="favorite_add"),
    path("directory/favorites/remove/", views.favorite_remove, name="favorite_remove"),
]
