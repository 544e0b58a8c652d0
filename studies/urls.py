from django.urls import path

from . import views

app_name = "studies"
urlpatterns = [
    path("overview/", views.overview, name="overview"),
    path("studies/<int:study_id>/", views.study_detail, name="study"),
]
