// Starts `weir lsp` for .weir files.
const vscode = require("vscode");
const { LanguageClient } = require("vscode-languageclient/node");

let client;

function activate(context) {
  const command = vscode.workspace.getConfiguration("weir").get("server.path", "weir");
  const serverOptions = { command, args: ["lsp"] };
  const clientOptions = {
    documentSelector: [{ scheme: "file", language: "weir" }],
    synchronize: { fileEvents: vscode.workspace.createFileSystemWatcher("**/*.weir") },
  };
  client = new LanguageClient("weir", "Weir", serverOptions, clientOptions);
  context.subscriptions.push(client);
  return client.start();
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
