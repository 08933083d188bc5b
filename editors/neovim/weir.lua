-- Weir for Neovim's built-in LSP client (0.7 or newer).
-- Put this file on your runtimepath (e.g. ~/.config/nvim/lua/weir.lua) and
-- call require("weir").setup() from your init.lua.
local M = {}

local markers = { ".git", "weir.toml" }

-- The project root: the nearest directory above the buffer's file that holds
-- one of `markers`, else the file's own directory.
local function root_of(buf)
  if vim.fs and vim.fs.root then -- 0.10+
    return vim.fs.root(buf, markers) or vim.fs.dirname(vim.api.nvim_buf_get_name(buf))
  end
  local start = vim.fn.fnamemodify(vim.api.nvim_buf_get_name(buf), ":p:h")
  local dir = start
  while true do
    for _, m in ipairs(markers) do
      if vim.loop.fs_stat(dir .. "/" .. m) then
        return dir
      end
    end
    local parent = vim.fn.fnamemodify(dir, ":h")
    if parent == dir then
      return start
    end
    dir = parent
  end
end

-- Before 0.8 there is no vim.lsp.start: keep one client per root ourselves.
local clients = {}

local function start(config, buf)
  if vim.lsp.start then -- 0.8+: reuses a running client with the same name and root
    return vim.lsp.start(config, { bufnr = buf })
  end
  local id = clients[config.root_dir]
  if not id or vim.lsp.client_is_stopped(id) then
    id = vim.lsp.start_client(config)
    clients[config.root_dir] = id
  end
  if id then
    vim.lsp.buf_attach_client(buf, id)
  end
  return id
end

function M.setup(opts)
  opts = opts or {}
  if vim.fn.has("nvim-0.8") == 1 then
    vim.filetype.add({ extension = { weir = "weir" } })
  else
    vim.api.nvim_create_autocmd({ "BufRead", "BufNewFile" }, {
      pattern = "*.weir",
      command = "setfiletype weir",
    })
  end
  vim.api.nvim_create_autocmd("FileType", {
    pattern = "weir",
    callback = function(args)
      vim.bo[args.buf].commentstring = "// %s"
      start({
        name = "weir",
        cmd = opts.cmd or { "weir", "lsp" },
        root_dir = root_of(args.buf),
      }, args.buf)
    end,
  })
end

return M
