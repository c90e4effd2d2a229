from django.contrib import admin
from django.urls import path

from container_manager.metrics_export import metrics_view

urlpatterns = [path("admin/", admin.site.urls), path("metrics", metrics_view)]
