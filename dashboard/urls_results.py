urlpatterns: list = []  # job results: exports, comparisons
