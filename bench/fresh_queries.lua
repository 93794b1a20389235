-- Each request with a query string of its own (?n=<thread>-<count>, ignored by the route), so that no answer can
-- come from the API's memory of recent reads (api/public_cache.py): what the route itself costs.
local threads = 0

function setup(thread)
    threads = threads + 1
    thread:set("id", threads)
end

function init(args)
    count = 0
end

function request()
    count = count + 1
    return wrk.format(nil, wrk.path .. "?n=" .. id .. "-" .. count)
end
