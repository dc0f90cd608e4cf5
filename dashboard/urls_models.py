urlpatterns: list = []  # model registry pages
