function B = blkproc(A, blk, border, fun)
  % Shim for MATLAB's deprecated blkproc (absent from Octave), the documented case used by the
  % toolkits: distinct blocks, zero border, A zero-padded to a multiple of the block size,
  % fun returning a scalar per block.
  if any(border ~= 0), error('blkproc shim: only a [0 0] border'); end
  [h, w] = size(A);
  nb = ceil([h w] ./ blk);
  P = zeros(nb .* blk, class(A));
  P(1:h, 1:w) = A;
  B = zeros(nb);
  for i = 1:nb(1)
    for j = 1:nb(2)
      B(i, j) = fun(P((i-1)*blk(1)+(1:blk(1)), (j-1)*blk(2)+(1:blk(2))));
    end
  end
end
