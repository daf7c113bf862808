// The API browser for this engine's own document. No validator badge: it would send the
// document to validator.swagger.io (the page loads nothing from another host).
window.ui = SwaggerUIBundle({
  url: "/api/v1/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  validatorUrl: null,
  tryItOutEnabled: true,
  persistAuthorization: true,
});
