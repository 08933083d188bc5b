-- Weir for Neovim's built-in LSP client (0.10+).
-- Put this file on your runtimepath (e.g. ~/.config/nvim/lua/weir.lua) and
-- call require("weir").setup() from your init.lua.
local M = {}

function M.setup(opts)
  opts = opts or {}
  vim.filetype.add({ extension = { weir = "weir" } })
  vim.api.nvim_create_autocmd("FileType", {
    pattern = "weir",
    callback = function(args)
      vim.bo[args.buf].commentstring = "// %s"
      local root = vim.fs.root(args.buf, { ".git", "weir.toml" }) or vim.fs.dirname(vim.api.nvim_buf_get_name(args.buf))
      vim.lsp.start({
        name = "weir",
        cmd = opts.cmd or { "weir", "lsp" },
        root_dir = root,
      }, { bufnr = args.buf })
    end,
  })
end

return M
