// Starts `omniflowc lsp` for .flow files; highlighting comes from the TextMate grammar.
const vscode = require("vscode");
const { LanguageClient } = require("vscode-languageclient/node");

let client;

function activate(context) {
  const command = vscode.workspace.getConfiguration("omniflow").get("server.path", "omniflowc");
  const server = { command, args: ["lsp"] };
  client = new LanguageClient(
    "omniflow",
    "omniflow",
    { run: server, debug: server },
    { documentSelector: [{ scheme: "file", language: "omniflow" }] }
  );
  context.subscriptions.push({ dispose: () => client && client.stop() });
  return client.start();
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
