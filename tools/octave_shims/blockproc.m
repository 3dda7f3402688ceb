% MATLAB's blockproc(A, [M N], fun) as documented for the default options: `fun` gets a struct
% whose `data` field is each M-by-N block (partial blocks at the right and bottom edges, no
% padding) and the results are tiled in block order. Octave's image package passes the bare
% matrix instead of the struct, which VIFB's HMSD_GF code (PS.m) cannot use. Used only by
% tools/vifb_octave_b.m.
function B = blockproc(A, blk, fun)
  [m, n] = size(A);
  rows = {};
  for r = 1:blk(1):m
    row = {};
    for c = 1:blk(2):n
      s.data = A(r:min(r + blk(1) - 1, m), c:min(c + blk(2) - 1, n));
      row{end+1} = fun(s);
    end
    rows{end+1} = cat(2, row{:});
  end
  B = cat(1, rows{:});
end
