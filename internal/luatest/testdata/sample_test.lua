Counter = 0
function TestOne() Counter = Counter + 1 end
function TestTwo() assert(Counter == 1) end
function helper() error("not a test") end
