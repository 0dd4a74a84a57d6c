-- LuaJIT side of the Kong stand-in (standin/gateway.py drives it over stdin/stdout).
--
-- It runs Kong's Lua the way Kong would, with mock objects offering only what the
-- configurations use:
--   * Kong's request-transformer templates: every $(expression) of a value is evaluated in
--     a read-only environment with `headers` (names lower-case, `_` read as `-`, repeated
--     headers as lists), `query_params` (decoded, `true` for a flag, lists when repeated)
--     and `type`; nil/false render as "" (Kong/kong kong/plugins/request-transformer/access.lua
--     with Penlight's pl.template inline `$()` escape).
--   * Kong's pre/post-function plugins: the chunk runs in a sandbox with a small `kong` PDK
--     (request.get_header(s), service.request.set_header/clear_header, response.exit, log);
--     a chunk that returns a function has that function run on each request.
--
-- Protocol: one command a line, fields separated by spaces, every field hex-encoded ("-"
-- is the empty string). Answers: zero or more "L <level> <message>" lines, then one
-- "D ..." line (or "ERR <message>").

local function dec(s)
  if s == "-" then return "" end
  return (s:gsub("..", function(h) return string.char(tonumber(h, 16)) end))
end

local function enc(s)
  s = tostring(s)
  if s == "" then return "-" end
  return (s:gsub(".", function(c) return string.format("%02x", c:byte()) end))
end

local function send(...)
  io.stdout:write(table.concat({...}, " "), "\n")
  io.stdout:flush()
end

local function log_line(level, msg)
  send("L", enc(level), enc(msg))
end

-- A header list is an array of {name, value} with lower-case names (nginx and Kong
-- compare names case-insensitively).
local function read_list(fields, i)
  local n = tonumber(dec(fields[i]))
  local list = {}
  for k = 1, n do
    list[k] = { dec(fields[i + 2 * k - 1]):lower(), dec(fields[i + 2 * k]) }
  end
  return list, i + 2 * n + 1
end

local function list_fields(list)
  local out = { enc(tostring(#list)) }
  for _, e in ipairs(list) do
    out[#out + 1] = enc(e[1])
    out[#out + 1] = enc(e[2])
  end
  return table.concat(out, " ")
end

local function list_get_all(list, name)
  name = name:lower()
  local vals = {}
  for _, e in ipairs(list) do
    if e[1] == name then vals[#vals + 1] = e[2] end
  end
  return vals
end

local function list_replace(list, name, value)
  name = name:lower()
  local found = false
  local i = 1
  while i <= #list do
    if list[i][1] == name then
      if found then
        table.remove(list, i)
      else
        list[i][2] = tostring(value)
        found = true
        i = i + 1
      end
    else
      i = i + 1
    end
  end
  if not found then list[#list + 1] = { name, tostring(value) } end
end

local function list_remove(list, name)
  name = name:lower()
  for i = #list, 1, -1 do
    if list[i][1] == name then table.remove(list, i) end
  end
end

-- A chunk's early exit (kong.response.exit) unwinds with this value.
local RESPOND = {}

-- ------------------------------------------------------------------ Kong

local function multi_table(list, normalize)
  local t = {}
  for _, e in ipairs(list) do
    local k, v = e[1], e[2]
    if v == "\0true" then v = true end
    local cur = t[k]
    if cur == nil then
      t[k] = v
    elseif type(cur) == "table" then
      cur[#cur + 1] = v
    else
      t[k] = { cur, v }
    end
  end
  if normalize then
    setmetatable(t, { __index = function(tt, k)
      if type(k) ~= "string" then return nil end
      local n = k:lower():gsub("_", "-")
      if n ~= k then return rawget(tt, n) end
      return nil
    end })
  end
  return t
end

local function render_template(template, env)
  local out = template:gsub("%$(%b())", function(expr)
    local chunk, err = loadstring("return " .. expr, "=template")
    if not chunk then error(err, 0) end
    setfenv(chunk, env)
    local v = chunk()
    return tostring(v or "")
  end)
  return out
end

local function kong_render(template, headers, query)
  local env = setmetatable({
    type = type,
    headers = multi_table(headers, true),
    query_params = multi_table(query, false),
    uri_captures = {},
    shared = {},
  }, {
    __newindex = function() error("This environment is read-only.", 2) end,
  })
  local ok, res = pcall(render_template, template, env)
  if not ok then
    send("ERR", enc(tostring(res)))
  else
    send("D", enc(res))
  end
end

local kong_functions = {}

local function kong_sandbox()
  return {
    assert = assert, error = error, ipairs = ipairs, next = next, pairs = pairs, pcall = pcall,
    select = select, tonumber = tonumber, tostring = tostring, type = type, unpack = unpack,
    xpcall = xpcall, string = string, table = table, math = math,
  }
end

local function kong_define(id, code)
  local env = kong_sandbox()
  local chunk, err = loadstring(code, "=post_function_" .. id)
  if not chunk then return nil, err end
  setfenv(chunk, env)
  kong_functions[id] = { chunk = chunk, env = env }
  return true
end

local function kong_run(id, list, method, path)
  local entry = kong_functions[id]
  local state = {}
  local function norm(name) return (name:lower():gsub("_", "-")) end
  entry.env.kong = {
    request = {
      get_header = function(name) return list_get_all(list, norm(name))[1] end,
      get_headers = function() return multi_table(list, true) end,
      get_method = function() return method end,
      get_path = function() return path end,
    },
    service = { request = {
      set_header = function(name, value) list_replace(list, norm(name), tostring(value)) end,
      add_header = function(name, value) list[#list + 1] = { norm(name), tostring(value) } end,
      clear_header = function(name) list_remove(list, norm(name)) end,
    } },
    response = {
      exit = function(status, body, headers)
        state.exit = { status = status, body = body, headers = headers or {} }
        error(RESPOND, 0)
      end,
    },
    log = {},
    ctx = { shared = {} },
  }
  entry.env.kong.response.error = entry.env.kong.response.exit
  for _, level in ipairs({ "debug", "info", "notice", "warn", "err", "crit" }) do
    entry.env.kong.log[level] = function(...)
      local parts = {}
      for i = 1, select("#", ...) do parts[#parts + 1] = tostring((select(i, ...))) end
      log_line(level, table.concat(parts))
    end
  end
  -- A chunk that returns a function has that function run on each request; any other
  -- chunk is itself the per-request code (it already ran once, just now, on the first).
  local ran = false
  if entry.fn == nil then
    local ok, res = pcall(entry.chunk)
    ran = true
    if ok and type(res) == "function" then
      setfenv(res, entry.env)
      entry.fn = res
      ran = false
    else
      entry.fn = false
      if not ok and res ~= RESPOND then
        send("ERR", enc(tostring(res)))
        return
      end
    end
  end
  if not ran then
    local ok, err = pcall(entry.fn or entry.chunk)
    if not ok and err ~= RESPOND then
      send("ERR", enc(tostring(err)))
      return
    end
  end
  if state.exit then
    local body = state.exit.body
    if type(body) == "table" then body = body.message or "" end
    local rh = {}
    for k, v in pairs(state.exit.headers) do rh[#rh + 1] = { k:lower(), tostring(v) } end
    send("D", enc(tostring(state.exit.status)), list_fields(list), list_fields(rh), enc(body or ""))
  else
    send("D", "-", list_fields(list), list_fields({}), "-")
  end
end

-- ------------------------------------------------------------------ main loop

for line in io.stdin:lines() do
  local fields = {}
  for f in line:gmatch("%S+") do fields[#fields + 1] = f end
  local cmd = fields[1]
  if cmd == "T" then
    local headers, i = read_list(fields, 3)
    local query = read_list(fields, i)
    kong_render(dec(fields[2]), headers, query)
  elseif cmd == "K" then
    local ok, err = kong_define(dec(fields[2]), dec(fields[3]))
    if ok then send("D") else send("ERR", enc(err)) end
  elseif cmd == "P" then
    local list, i = read_list(fields, 3)
    kong_run(dec(fields[2]), list, dec(fields[i]), dec(fields[i + 1]))
  else
    send("ERR", enc("unknown command " .. tostring(cmd)))
  end
end
