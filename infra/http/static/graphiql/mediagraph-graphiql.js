// mediagraph's GraphiQL start-up. A file, not an inline script: the page's Content-Security-Policy
// allows scripts from this server only. Its settings come from the page's JSON block.
(function () {
  "use strict";
  var config = JSON.parse(document.getElementById("graphiql-config").textContent);
  var url = window.location.origin + window.location.pathname;
  var fetcher = GraphiQL.createFetcher({
    url: url,
    // The headers tab's values also go into connection_init, where the server reads the token.
    subscriptionUrl: url.replace(/^http/, "ws"),
  });
  var explorer = GraphiQLPluginExplorer.explorerPlugin();

  function App() {
    return React.createElement(GraphiQL, {
      fetcher: fetcher,
      plugins: [explorer],
      defaultQuery: config.query,
      headers: config.headers,
      defaultHeaders: config.headers,
      // A token does not belong in localStorage; the page brings a fresh one (or the placeholder).
      shouldPersistHeaders: false,
      isHeadersEditorEnabled: true,
      defaultEditorToolsVisibility: "headers",
      inputValueDeprecation: true,
    });
  }

  ReactDOM.createRoot(document.getElementById("graphiql")).render(React.createElement(App));
})();
