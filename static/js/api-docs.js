// The API docs page: starts the vendored Swagger UI on the OpenAPI URL the server put in data-openapi-url.
(function () {
  "use strict";
  const root = document.getElementById("swagger-ui");
  if (!root || typeof SwaggerUIBundle === "undefined") return;
  const csrfToken = root.dataset.csrfToken;
  SwaggerUIBundle({
    url: root.dataset.openapiUrl,
    domNode: root,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    deepLinking: true,
    // The default asks validator.swagger.io about the spec: a request off this machine, which may have no internet.
    validatorUrl: null,
    requestInterceptor: function (request) {
      // Session-authenticated writes need Django's CSRF token; a Bearer token ignores it.
      if (csrfToken) request.headers["X-CSRFToken"] = csrfToken;
      return request;
    },
  });
})();
