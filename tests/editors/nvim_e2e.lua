-- End-to-end test of the Weir language server in a real Neovim (0.7+),
-- through the editor setup in editors/neovim/weir.lua. It opens a file,
-- waits for the server's diagnostics, asks for a hover and a completion, and
-- writes what it got as JSON. lsp/tests/neovim.rs runs it and checks the JSON.
--
--   WEIR_LSP=path/to/weir-lsp WEIR_E2E_ROOT=project WEIR_E2E_OUT=out.json \
--     nvim --headless --clean -n -c "luafile tests/editors/nvim_e2e.lua"
--
-- Environment:
--   WEIR_LSP           the server: a program, or words split on spaces ("weir lsp")
--   WEIR_E2E_ROOT      the project directory (the server's root)
--   WEIR_E2E_FILE      the file in it to open (default pipeline.weir)
--   WEIR_E2E_OUT       where to write the JSON result
--   WEIR_E2E_HOVER     text whose first character is hovered
--                      (default "message}": hovers `message` in `${message}`)
--   WEIR_E2E_COMPLETE  text at whose end completion is asked
--                      (default "${greet.": the members of `greet`)
--   WEIR_E2E_DIAGNOSTICS  how many diagnostics to wait for (default 1): a
--                      server may publish an empty list before it checked
--   WEIR_E2E_TIMEOUT   milliseconds to wait for each answer (default 20000)
--
-- Exits 0 after writing the JSON, or non-zero (`cquit`) with a message on
-- stderr when anything fails or times out.

local function fail(msg)
  io.stderr:write("nvim_e2e: " .. msg .. "\n")
  vim.cmd("cquit 1")
end

local function env(name, default)
  local v = os.getenv(name)
  if v == nil or v == "" then
    if default == nil then
      error(name .. " is not set", 0)
    end
    return default
  end
  return v
end

-- The hover's markdown as one string, whatever shape the server sent.
local function hover_text(contents)
  if type(contents) == "string" then
    return contents
  end
  if type(contents) ~= "table" then
    return ""
  end
  if contents.value then
    return contents.value
  end
  local parts = {}
  for _, c in ipairs(contents) do
    table.insert(parts, hover_text(c))
  end
  return table.concat(parts, "\n")
end

-- The 0-based line and character of the first occurrence of `text` in the
-- buffer, plus `shift` characters. The fixture is ASCII, so byte columns are
-- UTF-16 columns.
local function find(buf, text, shift)
  for i, line in ipairs(vim.api.nvim_buf_get_lines(buf, 0, -1, false)) do
    local col = line:find(text, 1, true)
    if col then
      return { line = i - 1, character = col - 1 + shift }
    end
  end
  error("the file has no " .. vim.inspect(text), 0)
end

local function attached(buf)
  local list = vim.lsp.get_clients and vim.lsp.get_clients({ bufnr = buf }) or vim.lsp.buf_get_clients(buf)
  return next(list) ~= nil
end

local function main()
  local lsp = env("WEIR_LSP")
  local server = { lsp }
  if vim.fn.executable(lsp) ~= 1 then -- not one program: words, as in "weir lsp"
    server = vim.split(lsp, " ", { trimempty = true })
  end
  local root = vim.fn.fnamemodify(env("WEIR_E2E_ROOT"), ":p"):gsub("/$", "")
  local file = root .. "/" .. env("WEIR_E2E_FILE", "pipeline.weir")
  local out = env("WEIR_E2E_OUT")
  local hover_at = env("WEIR_E2E_HOVER", "message}")
  local complete_after = env("WEIR_E2E_COMPLETE", "${greet.")
  local timeout = tonumber(env("WEIR_E2E_TIMEOUT", "20000"))
  local want_diagnostics = tonumber(env("WEIR_E2E_DIAGNOSTICS", "1"))

  -- Every publishDiagnostics, raw (code and range exactly as the server sent
  -- them), before Neovim's own handler turns them into vim.diagnostic items.
  local published = {}
  local default_handler = vim.lsp.handlers["textDocument/publishDiagnostics"]
  vim.lsp.handlers["textDocument/publishDiagnostics"] = function(err, result, ctx, config)
    if result then
      table.insert(published, result)
    end
    return default_handler(err, result, ctx, config)
  end

  -- The editor setup users install, started on this file.
  local script_dir = vim.fn.fnamemodify(debug.getinfo(1, "S").source:sub(2), ":p:h")
  local weir = dofile(script_dir .. "/../../editors/neovim/weir.lua")
  weir.setup({ cmd = server })
  vim.cmd("edit " .. vim.fn.fnameescape(file))
  local buf = vim.api.nvim_get_current_buf()
  if vim.bo[buf].filetype ~= "weir" then
    error("the file's filetype is " .. vim.inspect(vim.bo[buf].filetype) .. ", not weir", 0)
  end
  local uri = vim.uri_from_bufnr(buf)

  if not vim.wait(timeout, function() return attached(buf) end, 20) then
    error("no language server attached to the buffer within " .. timeout .. " ms", 0)
  end
  local function mine()
    for i = #published, 1, -1 do
      if published[i].uri == uri then
        return published[i]
      end
    end
  end
  local function settled()
    local p = mine()
    return p ~= nil and #p.diagnostics >= want_diagnostics
  end
  if not vim.wait(timeout, settled, 20) then
    error(string.format("no publishDiagnostics with %d or more diagnostics for %s within %d ms; the last: %s",
      want_diagnostics, uri, timeout, vim.inspect(mine())), 0)
  end

  local function request(method, position)
    local params = { textDocument = { uri = uri }, position = position }
    local answers, err = vim.lsp.buf_request_sync(buf, method, params, timeout)
    if not answers then
      error(method .. " failed: " .. tostring(err), 0)
    end
    for _, a in pairs(answers) do
      if a.err then
        error(method .. " answered an error: " .. vim.inspect(a.err), 0)
      end
      return a.result
    end
    error(method .. " got no answer", 0)
  end

  local hover_pos = find(buf, hover_at, 0)
  local hover = request("textDocument/hover", hover_pos)
  local complete_pos = find(buf, complete_after, #complete_after)
  local completion = request("textDocument/completion", complete_pos)
  local labels = {}
  for _, item in ipairs((completion and (completion.items or completion)) or {}) do
    table.insert(labels, item.label)
  end

  -- The latest diagnostics for the file: later ones replace earlier ones.
  local diagnostics = {}
  for _, d in ipairs(mine().diagnostics) do
    table.insert(diagnostics, {
      message = d.message,
      code = d.code,
      severity = d.severity,
      range = d.range,
    })
  end

  local v = vim.version()
  local result = {
    nvim = string.format("%d.%d.%d", v.major, v.minor, v.patch),
    uri = uri,
    diagnostics = diagnostics,
    publish_count = #published,
    hover = {
      position = hover_pos,
      contents = hover and hover_text(hover.contents) or vim.NIL,
    },
    completion = { position = complete_pos, labels = labels },
  }
  local f = assert(io.open(out, "w"))
  f:write(vim.fn.json_encode(result))
  f:close()
end

local ok, err = xpcall(main, debug.traceback)
if not ok then
  fail(tostring(err))
else
  vim.cmd("qa!")
end
