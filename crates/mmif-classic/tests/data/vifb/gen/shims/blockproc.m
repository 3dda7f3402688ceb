function out = blockproc(A, blk, fun)
% MATLAB-style blockproc (fun receives a struct with field .data; partial edge blocks; results
% tiled), for code written against MATLAB's interface.
[M, N] = size(A);
rows = {}; 
out = [];
for r = 1:blk(1):M
  rowres = [];
  for c = 1:blk(2):N
    bs.data = A(r:min(r+blk(1)-1, M), c:min(c+blk(2)-1, N));
    bs.location = [r c];
    bs.blockSize = blk;
    bs.imageSize = [M N];
    rowres = [rowres, fun(bs)];
  end
  out = [out; rowres];
end
end
