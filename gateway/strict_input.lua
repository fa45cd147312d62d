-- Strict input: refuse a REST body the transcoder would change in silence.
--
-- Envoy's JSON transcoder drops fields it does not know and coerces some values of the wrong
-- JSON type, so a misspelt field quietly becomes its default. This script checks the body of
-- every REST route that has one against the request message, before the transcoder sees it,
-- and answers 400 with one BadRequest field violation per problem: an unknown field (with the
-- fields it could have meant), a value of the wrong JSON type (with the type expected), an
-- enum value the API does not define (with the ones it does), two members of one oneof.
--
-- It also answers a path that some route serves, asked with a method none does: 405 with
-- Allow, where the router would say 404.
--
-- ROUTES, MESSAGES and ENUMS are generated from the descriptor set (gateway/strict_input.py)
-- and come before this text. A route is {pattern, message}, with `whole` when the body is the
-- request message and `field`/`root` when it is one of its fields. A field spec is {n = proto name, k = kind, r = repeated,
-- m = message or enum name, v = map value spec, o = oneof}.

-- Containers below the body's own. A level of a google.protobuf.Struct costs protobuf's
-- decoders three of their 100 levels, so 32 keeps every body the services can decode.
local MAX_DEPTH = 32
local MAX_VIOLATIONS = 100

local NULL = {}
local OBJECT = {}
local ARRAY = {}

-- JSON -------------------------------------------------------------------------------------

local byte, sub, find, char = string.byte, string.sub, string.find, string.char

local function fail(message, at)
  error({json = message .. " at byte " .. at}, 0)
end

local function utf8(code)
  if code < 0x80 then
    return char(code)
  elseif code < 0x800 then
    return char(0xC0 + math.floor(code / 0x40), 0x80 + code % 0x40)
  elseif code < 0x10000 then
    return char(0xE0 + math.floor(code / 0x1000), 0x80 + math.floor(code / 0x40) % 0x40,
      0x80 + code % 0x40)
  end
  return char(0xF0 + math.floor(code / 0x40000), 0x80 + math.floor(code / 0x1000) % 0x40,
    0x80 + math.floor(code / 0x40) % 0x40, 0x80 + code % 0x40)
end

local ESCAPES = {
  [34] = '"', [92] = "\\", [47] = "/", [98] = "\b", [102] = "\f", [110] = "\n", [114] = "\r",
  [116] = "\t",
}

-- Byte loops rather than patterns below: LuaJIT compiles these, and runs patterns in its
-- interpreter.
local function skip(text, i)
  local c = byte(text, i)
  while c == 32 or c == 10 or c == 13 or c == 9 do
    i = i + 1
    c = byte(text, i)
  end
  return i
end

local function parse_string(text, i)
  -- text[i] is the opening quote. Most strings hold no escape: one scan finds their end.
  local j = i + 1
  local c = byte(text, j)
  while c and c ~= 34 and c ~= 92 and c >= 32 do
    j = j + 1
    c = byte(text, j)
  end
  if c == 34 then
    return sub(text, i + 1, j - 1), j + 1
  end
  local parts, n = {}, 0
  i = i + 1
  while true do
    local at = find(text, '[%z\1-\31"\\]', i)
    if not at then
      fail("unterminated string", i)
    end
    n = n + 1
    parts[n] = sub(text, i, at - 1)
    c = byte(text, at)
    if c == 34 then
      return table.concat(parts), at + 1
    elseif c == 92 then
      local e = byte(text, at + 1)
      if e == 117 then
        local hex = sub(text, at + 2, at + 5)
        if not find(hex, "^%x%x%x%x$") then
          fail("bad \\u escape", at)
        end
        local code = tonumber(hex, 16)
        local after = at + 6
        if code >= 0xD800 and code <= 0xDBFF and sub(text, after, after + 1) == "\\u" then
          local low = tonumber(sub(text, after + 2, after + 5), 16)
          if low and low >= 0xDC00 and low <= 0xDFFF then
            code = 0x10000 + (code - 0xD800) * 0x400 + (low - 0xDC00)
            after = after + 6
          end
        end
        n = n + 1
        parts[n] = utf8(code)
        i = after
      elseif ESCAPES[e] then
        n = n + 1
        parts[n] = ESCAPES[e]
        i = at + 2
      else
        fail("bad escape", at)
      end
    else
      fail("control character in a string", at)
    end
  end
end

local parse_value

local function digits(text, i)
  local c = byte(text, i)
  local start = i
  while c and c >= 48 and c <= 57 do
    i = i + 1
    c = byte(text, i)
  end
  return i, i > start
end

local function parse_number(text, i)
  local start = i
  if byte(text, i) == 45 then
    i = i + 1
  end
  local first = byte(text, i)
  local found
  i, found = digits(text, i)
  if not found then
    fail("unexpected character", start)
  end
  if first == 48 and i - start > (byte(text, start) == 45 and 2 or 1) then
    fail("leading zero in a number", start)
  end
  if byte(text, i) == 46 then
    i, found = digits(text, i + 1)
    if not found then
      fail("a number's fraction needs digits", i)
    end
  end
  local e = byte(text, i)
  if e == 101 or e == 69 then
    i = i + 1
    local sign = byte(text, i)
    if sign == 43 or sign == 45 then
      i = i + 1
    end
    i, found = digits(text, i)
    if not found then
      fail("a number's exponent needs digits", i)
    end
  end
  return tonumber(sub(text, start, i - 1)), i
end

local LITERALS = {["true"] = true, ["false"] = false, ["null"] = NULL}

parse_value = function(text, i, depth)
  if depth > MAX_DEPTH then
    fail("nested more than " .. MAX_DEPTH .. " deep", i)
  end
  i = skip(text, i)
  local c = byte(text, i)
  if c == 123 then -- {
    local object = setmetatable({keys = {}, values = {}}, OBJECT)
    i = skip(text, i + 1)
    if byte(text, i) == 125 then
      return object, i + 1
    end
    while true do
      if byte(text, i) ~= 34 then
        fail("expected a quoted key", i)
      end
      local key
      key, i = parse_string(text, i)
      i = skip(text, i)
      if byte(text, i) ~= 58 then
        fail("expected ':'", i)
      end
      local value
      value, i = parse_value(text, i + 1, depth + 1)
      if object.values[key] == nil then
        object.keys[#object.keys + 1] = key
      end
      object.values[key] = value
      i = skip(text, i)
      local d = byte(text, i)
      if d == 125 then
        return object, i + 1
      elseif d ~= 44 then
        fail("expected ',' or '}'", i)
      end
      i = skip(text, i + 1)
    end
  elseif c == 91 then -- [
    local array = setmetatable({n = 0}, ARRAY)
    i = skip(text, i + 1)
    if byte(text, i) == 93 then
      return array, i + 1
    end
    while true do
      local value
      value, i = parse_value(text, i, depth + 1)
      array.n = array.n + 1
      array[array.n] = value
      i = skip(text, i)
      local d = byte(text, i)
      if d == 93 then
        return array, i + 1
      elseif d ~= 44 then
        fail("expected ',' or ']'", i)
      end
      i = i + 1
    end
  elseif c == 34 then
    return parse_string(text, i)
  end
  local word = c == 116 and "true" or c == 102 and "false" or c == 110 and "null"
  if word then
    if sub(text, i, i + #word - 1) ~= word then
      fail("unexpected character", i)
    end
    return LITERALS[word], i + #word
  end
  return parse_number(text, i)
end

local function parse(text)
  local value, i = parse_value(text, 1, 0)
  i = skip(text, i)
  if i <= #text then
    fail("unexpected text after the value", i)
  end
  return value
end

local function quote(text)
  return '"' .. string.gsub(text, '[%z\1-\31"\\]', function(c)
    if c == '"' then
      return '\\"'
    elseif c == "\\" then
      return "\\\\"
    end
    return string.format("\\u%04x", byte(c))
  end) .. '"'
end

-- Checks -----------------------------------------------------------------------------------

local function json_type(value)
  local t = type(value)
  if value == NULL then
    return "null"
  elseif t == "table" then
    return getmetatable(value) == OBJECT and "object" or "array"
  elseif t == "boolean" then
    return "boolean"
  end
  return t
end

local Check = {}
Check.__index = Check

function Check:add(field, description, reason)
  if #self.violations < MAX_VIOLATIONS then
    self.violations[#self.violations + 1] = {field, description, reason}
  end
end

function Check:wrong_type(field, expected, value)
  self:add(field, "must be " .. expected .. ", not a JSON " .. json_type(value), "INVALID_TYPE")
end

local function integral(value, low, high)
  if type(value) == "number" then
    return value == math.floor(value) and value >= low and value <= high
  end
  if type(value) == "string" then
    if not find(value, "^-?%d+$") then
      return false
    end
    local number = tonumber(value)
    return number >= low and number <= high
  end
  return false
end

local INTEGERS = {
  int32 = {-2147483648, 2147483647, "an integer of 32 bits"},
  uint32 = {0, 4294967295, "an unsigned integer of 32 bits"},
  int64 = {-9223372036854775808, 9223372036854775807, "an integer (a number or a string of digits)"},
  uint64 = {0, 18446744073709551615, "an unsigned integer (a number or a string of digits)"},
}
local STRING_KINDS = {
  string = "a string",
  bytes = "a base64 string",
  timestamp = 'an RFC 3339 time string such as "2026-01-31T12:00:00Z"',
  duration = 'a duration string such as "1.5s"',
  fieldmask = 'a comma-separated string of field paths such as "display_name,properties"',
}
local SPECIAL_FLOATS = {NaN = true, Infinity = true, ["-Infinity"] = true}

-- A field's path is built only where it is needed (a violation, a nested message): most
-- fields are fine, and building every path would cost more than checking them.
local function path_of(base, name, suffix)
  if suffix == nil then
    return base .. name
  elseif type(suffix) == "number" then
    return base .. name .. "[" .. (suffix - 1) .. "]"
  end
  return base .. name .. suffix
end

function Check:value(spec, value, base, name)
  if value == NULL then
    return
  end
  if spec.v then
    if json_type(value) ~= "object" then
      return self:wrong_type(base .. name, "a JSON object (a map)", value)
    end
    for _, key in ipairs(value.keys) do
      self:single(spec.v, value.values[key], base, name, "." .. key)
    end
  elseif spec.r then
    if json_type(value) ~= "array" then
      return self:wrong_type(base .. name, "a JSON array", value)
    end
    for index = 1, value.n do
      self:single(spec, value[index], base, name, index)
    end
  else
    self:single(spec, value, base, name, nil)
  end
end

function Check:single(spec, value, base, name, suffix)
  local kind = spec.k
  if value == NULL and kind ~= "value" then
    return
  end
  local t = type(value)
  local integer = INTEGERS[kind]
  if integer then
    if not integral(value, integer[1], integer[2]) then
      self:wrong_type(path_of(base, name, suffix), integer[3], value)
    end
  elseif STRING_KINDS[kind] then
    if t ~= "string" then
      self:wrong_type(path_of(base, name, suffix), STRING_KINDS[kind], value)
    end
  elseif kind == "bool" then
    if t ~= "boolean" then
      self:wrong_type(path_of(base, name, suffix), "true or false", value)
    end
  elseif kind == "double" then
    if t ~= "number" and not (t == "string" and (SPECIAL_FLOATS[value] or tonumber(value))) then
      self:wrong_type(path_of(base, name, suffix), "a number", value)
    end
  elseif kind == "enum" then
    local values = ENUMS[spec.m]
    if t == "string" then
      if not values.set[value] then
        self:add(path_of(base, name, suffix), "must be one of " .. values.list .. ", not " ..
          quote(value), "UNKNOWN_ENUM_VALUE")
      end
    elseif not (t == "number" and values.numbers[value]) then
      self:wrong_type(path_of(base, name, suffix), "one of " .. values.list, value)
    end
  elseif kind == "message" then
    self:message(spec.m, value, path_of(base, name, suffix))
  elseif kind == "struct" or kind == "any" then
    if json_type(value) ~= "object" then
      self:wrong_type(path_of(base, name, suffix), "a JSON object", value)
    end
  elseif kind == "list" then
    if json_type(value) ~= "array" then
      self:wrong_type(path_of(base, name, suffix), "a JSON array", value)
    end
  end
end

-- ``path`` is the message's own path, "" for the body itself.
function Check:message(name, value, path)
  if json_type(value) ~= "object" then
    return self:wrong_type(path == "" and "body" or path, "a JSON object", value)
  end
  local fields = MESSAGES[name].fields
  local prefix = path == "" and "" or path .. "."
  local chosen = nil
  local values = value.values
  for _, key in ipairs(value.keys) do
    local spec = fields[key]
    if spec == nil then
      self:add(prefix .. key, "is not a field of " .. name .. "; its fields are " ..
        MESSAGES[name].names, "UNKNOWN_FIELD")
    else
      local member = values[key]
      if spec.o and member ~= NULL then
        chosen = chosen or {}
        if chosen[spec.o] then
          self:add(prefix .. spec.n, "is one of " .. spec.o .. ", and " .. chosen[spec.o] ..
            " is set too: set at most one", "ONEOF_CONFLICT")
        end
        chosen[spec.o] = spec.n
      end
      self:value(spec, member, prefix, spec.n)
    end
  end
end

-- The filter -------------------------------------------------------------------------------

local function route_for(method, path)
  local candidates = ROUTES[method]
  if candidates == nil then
    return nil
  end
  for _, route in ipairs(candidates) do
    if find(path, route.pattern) then
      return route
    end
  end
  return nil
end

local function reply(handle, status, details, message, code, headers)
  -- Marked so that the gateway's mapping of its own replies leaves this body as it is. The
  -- request id goes in, as in every error of the mesh, so a user can quote it.
  handle:streamInfo():dynamicMetadata():set("mesh.strict_input", "refused", true)
  local request_id = handle:headers():get("x-request-id") or ""
  local body = '{"code":' .. code .. ',"message":' .. quote(message) .. ',"details":[' ..
    details .. ',{"@type":"type.googleapis.com/google.rpc.RequestInfo","request_id":' ..
    quote(request_id) .. '}]}'
  headers[":status"] = status
  headers["content-type"] = "application/json"
  handle:respond(headers, body)
end

local function not_allowed(handle, method, path)
  local allowed = {}
  for verb, candidates in pairs(ROUTES) do
    for _, route in ipairs(candidates) do
      if find(path, route.pattern) then
        allowed[#allowed + 1] = verb
        break
      end
    end
  end
  if #allowed == 0 then
    return false
  end
  table.sort(allowed)
  local allow = table.concat(allowed, ", ")
  local message = method .. " is not allowed on " .. path .. "; allowed: " .. allow
  reply(handle, "405",
    '{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"METHOD_NOT_ALLOWED",' ..
    '"domain":"gateway.mesh","metadata":{"allow":' .. quote(allow) .. '}}', message, 12,
    {allow = allow})
  return true
end

local function refuse(handle, name, violations)
  local shown, items = {}, {}
  for index, v in ipairs(violations) do
    shown[index] = v[1] .. ": " .. v[2]
    items[index] = '{"field":' .. quote(v[1]) .. ',"description":' .. quote(v[2]) ..
      ',"reason":' .. quote(v[3]) .. '}'
  end
  local message = "the request body is not a valid " .. name .. ": " .. table.concat(shown, "; ")
  local details = '{"@type":"type.googleapis.com/google.rpc.ErrorInfo",' ..
    '"reason":"INVALID_REQUEST_BODY","domain":"gateway.mesh","metadata":{"message":' ..
    quote(name) .. '}},{"@type":"type.googleapis.com/google.rpc.BadRequest",' ..
    '"field_violations":[' .. table.concat(items, ",") .. ']}'
  reply(handle, "400", details, message, 3, {})
end

function envoy_on_request(handle)
  local headers = handle:headers()
  local content_type = headers:get("content-type") or ""
  if find(content_type, "^application/grpc") then
    return
  end
  local method = headers:get(":method") or ""
  local path = string.match(headers:get(":path") or "", "^[^?]*")
  local route = route_for(method, path)
  if route == nil then
    not_allowed(handle, method, path)
    return
  end
  if not (route.whole or route.root) then
    return
  end
  local body = handle:body()
  if body == nil or body:length() == 0 then
    return
  end
  local ok, value = pcall(parse, body:getBytes(0, body:length()))
  if not ok then
    if type(value) == "table" and value.json then
      return refuse(handle, route.message, {{"body", "is not JSON: " .. value.json, "INVALID_JSON"}})
    end
    error(value)
  end
  local check = setmetatable({violations = {}}, Check)
  if route.root then
    check:value(route.root, value, "", route.field)
  else
    check:message(route.message, value, "")
  end
  if #check.violations > 0 then
    refuse(handle, route.message, check.violations)
  end
end
